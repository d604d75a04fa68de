import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { deflateRawSync, deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDevice, MemoryDevice, collectExtents, view, type BlockDevice } from '@amitrans/block';
import { requireTools, run, tmpDir, writeSparseImage, type TmpDir, expectSameAsFile, outcome, readAll } from '@amitrans/testkit';
import { vmdkDriver } from '../src/index.js';

let dir: TmpDir;
const SIZE = 40 * 1024 * 1024 + 9 * 512; // more than one grain table (32 MiB each)

beforeAll(async () => {
  dir = await tmpDir();
  await writeSparseImage(dir.file('src.raw'), SIZE, 5);
});
afterAll(() => dir.remove());

function related(path: string) {
  return { file: path, openRelated: (name: string): Promise<BlockDevice> => FileDevice.open(join(dirname(path), name)) };
}

async function convertAndRead(subformat: string): Promise<void> {
  const out = dir.file(`${subformat}.vmdk`);
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${subformat}`, dir.file('src.raw'), out]);
  const file = await FileDevice.open(out);
  const head = await readFile(out);
  expect(vmdkDriver.probe({ head: head.subarray(0, 65536), tail: new Uint8Array(0), size: head.length })?.subformat).toBe(subformat);
  try {
    const dev = await vmdkDriver.open!(file, related(out));
    expect(dev.size).toBe(SIZE);
    await expectSameAsFile(dev, dir.file('src.raw'));
    if (subformat !== 'monolithicFlat') {
      const map = JSON.parse((await run('qemu-img', ['map', '--output=json', out])).stdout) as { length: number; data: boolean }[];
      const ours = await collectExtents(dev);
      const total = (xs: { length: number }[]) => xs.reduce((n, x) => n + x.length, 0);
      expect(total(ours.filter((e) => e.kind === 'data'))).toBe(total(map.filter((m) => m.data)));
    }
    await dev.close();
  } finally {
    await file.close();
  }
}

describe('VMDK reader against qemu-img', () => {
  it('reads monolithicSparse', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    await convertAndRead('monolithicSparse');
  });

  it('reads streamOptimized (QEMU front-metadata layout)', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    await convertAndRead('streamOptimized');
  });

  it('reads monolithicFlat through openRelated, and says clearly when it cannot', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    await convertAndRead('monolithicFlat');
    const file = await FileDevice.open(dir.file('monolithicFlat.vmdk'));
    const err = await vmdkDriver.open!(file).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as unknown as { code: string }).code).toBe('E_UNSUPPORTED');
    expect((err as Error).message).toMatch(/monolithicFlat-flat\.vmdk/);
    await file.close();
  });

  it('reads twoGbMaxExtentSparse and twoGbMaxExtentFlat descriptors', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    await convertAndRead('twoGbMaxExtentSparse');
    await convertAndRead('twoGbMaxExtentFlat');
  });
});

/** A footer-form streamOptimized file built here from the spec, independent of our writer. */
function handBuiltStream(disk: Uint8Array, options: { raw?: boolean; zeroGte?: number } = {}): Uint8Array {
  const grainSectors = 16; // 8 KiB grains, 4 GTEs per GT: several GTs on a small disk
  const gtes = 4;
  const grain = grainSectors * 512;
  const capacity = disk.length / 512;
  const chunks: Uint8Array[] = [];
  let pos = 0;
  const put = (b: Uint8Array) => {
    chunks.push(b);
    pos += b.length;
  };
  const header = (gdOffset: bigint) => {
    const h = new Uint8Array(512);
    const dv = view(h);
    h.set([0x4b, 0x44, 0x4d, 0x56]);
    dv.setUint32(4, 3, true);
    dv.setUint32(8, 1 | (1 << 16) | (1 << 17) | (options.zeroGte !== undefined ? 4 : 0), true);
    dv.setBigUint64(12, BigInt(capacity), true);
    dv.setBigUint64(20, BigInt(grainSectors), true);
    dv.setBigUint64(28, 1n, true);
    dv.setBigUint64(36, 2n, true);
    dv.setUint32(44, gtes, true);
    dv.setBigUint64(56, gdOffset, true);
    dv.setBigUint64(64, 4n, true);
    h.set([0x0a, 0x20, 0x0d, 0x0a], 73);
    dv.setUint16(77, 1, true);
    return h;
  };
  const marker = (numSectors: number, type: number) => {
    const m = new Uint8Array(512);
    view(m).setBigUint64(0, BigInt(numSectors), true);
    view(m).setUint32(12, type, true);
    return m;
  };
  put(header(0xffffffffffffffffn));
  const desc = new Uint8Array(1024);
  desc.set(Buffer.from(`# Disk DescriptorFile\r\nversion=1\r\nCID=12345678\r\nparentCID=ffffffff\r\n  createType="streamOptimized"\r\nRW ${capacity} SPARSE "x.vmdk"\r\n`));
  put(desc);
  put(new Uint8Array(512)); // up to overHead = 4 sectors
  const grains = Math.ceil(capacity / grainSectors);
  const gtCount = Math.ceil(grains / gtes);
  const gd = new Uint32Array(gtCount);
  for (let t = 0; t < gtCount; t++) {
    const gt = new Uint32Array(gtes);
    for (let k = 0; k < gtes && t * gtes + k < grains; k++) {
      const g = t * gtes + k;
      const data = disk.subarray(g * grain, (g + 1) * grain);
      if (options.zeroGte === g) {
        gt[k] = 1;
        continue;
      }
      if (data.every((b) => b === 0)) continue;
      const packed = options.raw ? deflateRawSync(data) : deflateSync(data);
      const m = new Uint8Array(Math.ceil((12 + packed.length) / 512) * 512);
      view(m).setBigUint64(0, BigInt(g * grainSectors), true);
      view(m).setUint32(8, packed.length, true);
      m.set(packed, 12);
      gt[k] = pos / 512;
      put(m);
    }
    if (gt.some((v) => v !== 0)) {
      put(marker(1, 1));
      gd[t] = pos / 512;
      const tb = new Uint8Array(512);
      tb.set(new Uint8Array(gt.buffer));
      put(tb);
    }
  }
  put(marker(1, 2));
  const gdOffset = pos / 512;
  const gdb = new Uint8Array(Math.ceil((gtCount * 4) / 512) * 512);
  gdb.set(new Uint8Array(gd.buffer));
  put(gdb);
  put(marker(1, 3));
  put(header(BigInt(gdOffset)));
  put(new Uint8Array(512));
  return Buffer.concat(chunks);
}

function sampleDisk(): Uint8Array {
  const disk = new Uint8Array(1024 * 1024 + 3 * 512);
  for (let i = 0; i < disk.length; i++) if ((i >> 13) % 3 !== 1) disk[i] = (i * 31 + (i >> 9)) & 0xff;
  disk.fill(0, 300000, 500000);
  return disk;
}

describe('VMDK reader on a hand-built footer-form stream', () => {
  it('follows the footer to the grain directory (zlib grains, CRLF indented descriptor)', async () => {
    const disk = sampleDisk();
    const dev = await vmdkDriver.open!(new MemoryDevice(handBuiltStream(disk), { writable: false }));
    expect(dev.size).toBe(disk.length);
    expect(Buffer.compare(await readAll(dev), disk)).toBe(0);
    const kinds = new Set((await collectExtents(dev)).map((e) => e.kind));
    expect(kinds).toEqual(new Set(['data', 'unallocated']));
  });

  it('accepts raw deflate grains too', async () => {
    const disk = sampleDisk();
    const dev = await vmdkDriver.open!(new MemoryDevice(handBuiltStream(disk, { raw: true }), { writable: false }));
    expect(Buffer.compare(await readAll(dev), disk)).toBe(0);
  });

  it('maps a zeroed-grain GTE (1) to a zero extent that reads as zeros', async () => {
    const disk = sampleDisk();
    const dev = await vmdkDriver.open!(new MemoryDevice(handBuiltStream(disk, { zeroGte: 2 }), { writable: false }));
    const ext = await collectExtents(dev, { offset: 2 * 8192, length: 8192 });
    expect(ext).toEqual([{ offset: 16384, length: 8192, kind: 'zero' }]);
    const buf = new Uint8Array(8192);
    await dev.read(buf, 16384);
    expect(buf.every((b) => b === 0)).toBe(true);
  });

  it('is readable by qemu-img too (the hand-built file is a valid oracle input)', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    const disk = sampleDisk();
    const { writeFile } = await import('node:fs/promises');
    await writeFile(dir.file('hand.vmdk'), handBuiltStream(disk));
    await writeFile(dir.file('hand.raw'), disk);
    await run('qemu-img', ['compare', '-f', 'raw', '-F', 'vmdk', dir.file('hand.raw'), dir.file('hand.vmdk')]);
  });

  it('refuses a stream whose footer also says GD_AT_END', async () => {
    const bytes = handBuiltStream(sampleDisk());
    view(bytes).setBigUint64(bytes.length - 1024 + 56, 0xffffffffffffffffn, true);
    expect(await outcome(vmdkDriver.open!(new MemoryDevice(bytes)))).toBe('E_CORRUPT');
  });
});
