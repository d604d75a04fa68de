import { writeFile, truncate } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir, type TmpDir } from '@amitrans/testkit';
import {
  ConcatDevice,
  FileDevice,
  ImageError,
  MemoryDevice,
  SliceDevice,
  ZeroDevice,
  collectExtents,
  readAt,
  u64be,
  u64le,
} from '../src/index.js';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ImageError) return err.code;
    throw err;
  }
  return 'no error';
}

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(async () => {
  await dir.remove();
});

describe('range checks', () => {
  const dev = new MemoryDevice(4096);
  it('rejects reads past the end', async () => {
    expect(await code(dev.read(new Uint8Array(2), 4095))).toBe('E_OUT_OF_RANGE');
    expect(await code(dev.read(new Uint8Array(1), 4096))).toBe('E_OUT_OF_RANGE');
  });
  it('accepts a read that ends exactly at the end, and empty reads', async () => {
    await dev.read(new Uint8Array(1), 4095);
    await dev.read(new Uint8Array(0), 4096);
  });
  it('rejects negative, fractional and NaN offsets', async () => {
    expect(await code(dev.read(new Uint8Array(1), -1))).toBe('E_BAD_OFFSET');
    expect(await code(dev.read(new Uint8Array(1), 1.5))).toBe('E_BAD_OFFSET');
    expect(await code(dev.read(new Uint8Array(1), Number.NaN))).toBe('E_BAD_OFFSET');
  });
  it('rejects offsets and sizes beyond 2^53', async () => {
    expect(await code(dev.read(new Uint8Array(1), 2 ** 60))).toBe('E_TOO_LARGE');
    expect(() => new ZeroDevice(2 ** 54)).toThrow(expect.objectContaining({ code: 'E_TOO_LARGE' }));
    const big = new Uint8Array(8).fill(0xff);
    expect(() => u64le(big, 0, 'test', 'size')).toThrow(expect.objectContaining({ code: 'E_TOO_LARGE' }));
    expect(() => u64be(big, 0, 'test', 'size')).toThrow(/beyond 2\^53/);
  });
  it('rejects extents ranges outside the device', async () => {
    await expect(collectExtents(dev, { offset: 4000, length: 200 })).rejects.toMatchObject({ code: 'E_OUT_OF_RANGE' });
  });
  it('refuses writes to read-only devices and use after close', async () => {
    expect(await code(new ZeroDevice(10).write(new Uint8Array(1), 0))).toBe('E_READ_ONLY');
    const m = new MemoryDevice(10);
    await m.close();
    expect(await code(m.read(new Uint8Array(1), 0))).toBe('E_CLOSED');
  });
  it('refuses huge readAt allocations', async () => {
    expect(await code(readAt(new ZeroDevice(2 ** 40), 0, 2 ** 31))).toBe('E_TOO_LARGE');
  });
});

describe('FileDevice', () => {
  it('reads a file positionally, read-only by default', async () => {
    const path = dir.file('f.img');
    const bytes = new Uint8Array(10000).map((_, i) => i % 251);
    await writeFile(path, bytes);
    const dev = await FileDevice.open(path);
    expect(dev.size).toBe(10000);
    expect(dev.writable).toBe(false);
    expect(await readAt(dev, 1234, 100)).toEqual(bytes.subarray(1234, 1334));
    expect(await code(dev.write(new Uint8Array(1), 0))).toBe('E_READ_ONLY');
    expect(await collectExtents(dev)).toEqual([{ offset: 0, length: 10000, kind: 'data' }]);
    await dev.close();
  });
  it('writes when asked', async () => {
    const path = dir.file('w.img');
    await writeFile(path, new Uint8Array(1024));
    const dev = await FileDevice.open(path, { writable: true });
    await dev.write(new Uint8Array([1, 2, 3]), 100);
    expect(await readAt(dev, 99, 5)).toEqual(new Uint8Array([0, 1, 2, 3, 0]));
    await dev.close();
  });
  it('names the file when it is shorter than it was', async () => {
    const path = dir.file('t.img');
    await writeFile(path, new Uint8Array(8192));
    const dev = await FileDevice.open(path);
    await truncate(path, 1000);
    const err = await dev.read(new Uint8Array(512), 4096).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).code).toBe('E_TRUNCATED');
    expect((err as ImageError).message).toContain(path);
    await dev.close();
  });
  it('names the file when it cannot be opened', async () => {
    await expect(FileDevice.open(dir.file('missing.img'))).rejects.toThrow(/missing\.img: cannot open/);
  });
  it('refuses what is neither a regular file nor a block device, naming it', async () => {
    await expect(FileDevice.open(dir.path)).rejects.toMatchObject({ code: 'E_FILE_TYPE', message: expect.stringContaining(dir.path) });
  });
});

describe('SliceDevice and ConcatDevice', () => {
  const base = new MemoryDevice(new Uint8Array(4096).map((_, i) => i & 0xff));
  it('a slice reads its window and refuses to leave it', async () => {
    const s = new SliceDevice(base, 1000, 500);
    expect(await readAt(s, 0, 4)).toEqual(new Uint8Array([1000 & 0xff, 1001 & 0xff, 1002 & 0xff, 1003 & 0xff]));
    expect(await code(s.read(new Uint8Array(2), 499))).toBe('E_OUT_OF_RANGE');
    expect(() => new SliceDevice(base, 4000, 200)).toThrow(expect.objectContaining({ code: 'E_OUT_OF_RANGE' }));
  });
  it('a slice maps extents into its own coordinates', async () => {
    const c = new ConcatDevice([new MemoryDevice(100), new ZeroDevice(100), new MemoryDevice(100)]);
    const s = new SliceDevice(c, 50, 200);
    expect(await collectExtents(s)).toEqual([
      { offset: 0, length: 50, kind: 'data' },
      { offset: 50, length: 100, kind: 'unallocated' },
      { offset: 150, length: 50, kind: 'data' },
    ]);
  });
  it('concatenation reads and writes across part boundaries', async () => {
    const a = new MemoryDevice(new Uint8Array([1, 2, 3]));
    const empty = new MemoryDevice(0);
    const b = new MemoryDevice(new Uint8Array([4, 5, 6, 7]));
    const c = new ConcatDevice([a, empty, b]);
    expect(c.size).toBe(7);
    expect(await readAt(c, 1, 5)).toEqual(new Uint8Array([2, 3, 4, 5, 6]));
    await c.write(new Uint8Array([9, 9]), 2);
    expect(a.bytes).toEqual(new Uint8Array([1, 2, 9]));
    expect(b.bytes).toEqual(new Uint8Array([9, 5, 6, 7]));
    expect(await readAt(c, 3, 4)).toEqual(new Uint8Array([9, 5, 6, 7]));
  });
});

describe('MaskedDevice', () => {
  it('reads zeros in holes and maps them unallocated, never reading the base there', async () => {
    const { MaskedDevice } = await import('../src/index.js');
    const bytes = new Uint8Array(10000).fill(7);
    const base = new MemoryDevice(bytes);
    const reads: [number, number][] = [];
    const spy = {
      size: base.size,
      writable: false,
      read: async (b: Uint8Array, p: number) => {
        reads.push([p, b.length]);
        await base.read(b, p);
      },
      write: () => Promise.reject(new Error('read-only')),
      extents: (r?: { offset: number; length: number }) => base.extents(r),
      close: () => base.close(),
    };
    const m = new MaskedDevice(spy, [{ offset: 6000, length: 1000 }, { offset: 1000, length: 2000 }, { offset: 2500, length: 1000 }]);
    expect(m.holes).toEqual([{ offset: 1000, length: 2500 }, { offset: 6000, length: 1000 }]);
    const all = await readAt(m, 0, 10000);
    expect(all.subarray(0, 1000).every((b) => b === 7)).toBe(true);
    expect(all.subarray(1000, 3500).every((b) => b === 0)).toBe(true);
    expect(all.subarray(3500, 6000).every((b) => b === 7)).toBe(true);
    expect(all.subarray(6000, 7000).every((b) => b === 0)).toBe(true);
    for (const [p, n] of reads) expect(p + n <= 1000 || (p >= 3500 && p + n <= 6000) || p >= 7000).toBe(true);
    expect(await collectExtents(m)).toEqual([
      { offset: 0, length: 1000, kind: 'data' },
      { offset: 1000, length: 2500, kind: 'unallocated' },
      { offset: 3500, length: 2500, kind: 'data' },
      { offset: 6000, length: 1000, kind: 'unallocated' },
      { offset: 7000, length: 3000, kind: 'data' },
    ]);
    expect(() => new MaskedDevice(base, [{ offset: 9999, length: 2 }])).toThrow(expect.objectContaining({ code: 'E_OUT_OF_RANGE' }));
  });
});
