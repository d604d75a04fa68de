import { randomBytes } from 'node:crypto';
import { open, truncate, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTools, tmpDir, type TmpDir } from '@amitrans/testkit';
import { FileDevice, MIN_HOLE_BYTES, collectExtents, readData, seekDataRanges } from '../src/index.js';

const MIB = 1024 * 1024;
let dir: TmpDir;
let sparse: string;
const head = randomBytes(4096);
const middle = randomBytes(MIB);
const AT = 300 * MIB;

beforeAll(async () => {
  dir = await tmpDir();
  // 1 GiB of which 4 KiB at 0 and 1 MiB at 300 MiB are written: the rest are holes.
  sparse = dir.file('sparse.raw');
  await writeFile(sparse, head);
  const h = await open(sparse, 'r+');
  await h.write(middle, 0, middle.length, AT);
  await h.close();
  await truncate(sparse, 1024 * MIB);
});
afterAll(async () => {
  await dir.remove();
});

/** Every 'data' byte of the device read through readData, and what it read. */
async function readAllData(dev: FileDevice): Promise<{ bytes: number; at: Map<number, Uint8Array> }> {
  let bytes = 0;
  const at = new Map<number, Uint8Array>();
  for await (const piece of readData(dev)) {
    if ('data' in piece) {
      bytes += piece.data.length;
      at.set(piece.offset, piece.data);
    }
  }
  return { bytes, at };
}

describe('FileDevice: a sparse file maps its holes without reading them (SEEK_DATA/SEEK_HOLE)', () => {
  it('maps the written ranges as data and the holes as unallocated, and reads only the data', async (ctx) => {
    requireTools(ctx, 'python3');
    const dev = await FileDevice.open(sparse);
    try {
      const extents = await collectExtents(dev);
      const data = extents.filter((e) => e.kind === 'data');
      // The filesystem keeps data in whole blocks: each written range lies in one data extent.
      for (const [offset, length] of [[0, head.length], [AT, middle.length]]) {
        expect(data.some((e) => e.offset <= offset! && e.offset + e.length >= offset! + length!), `data at ${offset}`).toBe(true);
      }
      expect(extents.filter((e) => e.kind === 'unallocated').reduce((n, e) => n + e.length, 0)).toBeGreaterThan(1000 * MIB);
      const read = await readAllData(dev);
      expect(read.bytes).toBeLessThanOrEqual(2 * MIB);
      // A range inside: cut at the data's edges, the holes unallocated.
      expect(await collectExtents(dev, { offset: AT - 4096, length: 8192 })).toEqual([
        { offset: AT - 4096, length: 4096, kind: 'unallocated' },
        { offset: AT, length: 4096, kind: 'data' },
      ]);
      const got = new Uint8Array(middle.length);
      await dev.read(got, AT);
      expect(Buffer.from(got).equals(middle)).toBe(true);
    } finally {
      await dev.close();
    }
  });

  it('without python3 the file is one data extent, read as before', async () => {
    const saved = process.env.AMITRANS_PYTHON;
    process.env.AMITRANS_PYTHON = dir.file('no-such-python3');
    try {
      const dev = await FileDevice.open(sparse);
      expect(await collectExtents(dev)).toEqual([{ offset: 0, length: 1024 * MIB, kind: 'data' }]);
      await dev.close();
    } finally {
      if (saved === undefined) delete process.env.AMITRANS_PYTHON;
      else process.env.AMITRANS_PYTHON = saved;
    }
  });

  it('a file opened for writing, or with fewer unallocated bytes than are worth asking about, is one data extent', async () => {
    const rw = await FileDevice.open(sparse, { writable: true });
    expect(await collectExtents(rw)).toEqual([{ offset: 0, length: 1024 * MIB, kind: 'data' }]);
    await rw.close();
    const small = dir.file('small.raw');
    await writeFile(small, head);
    await truncate(small, MIN_HOLE_BYTES - MIB);
    const dev = await FileDevice.open(small);
    expect(await collectExtents(dev)).toEqual([{ offset: 0, length: MIN_HOLE_BYTES - MIB, kind: 'data' }]);
    await dev.close();
  });

  it('past the range budget the rest of the file counts as data', async (ctx) => {
    requireTools(ctx, 'python3');
    const h = await open(sparse, 'r');
    try {
      const all = await seekDataRanges(h.fd, 1024 * MIB);
      expect(all!.length).toBeGreaterThanOrEqual(2);
      const capped = await seekDataRanges(h.fd, 1024 * MIB, 1);
      expect(capped).toEqual([{ offset: all![0]!.offset, length: 1024 * MIB - all![0]!.offset }]);
    } finally {
      await h.close();
    }
  });
});
