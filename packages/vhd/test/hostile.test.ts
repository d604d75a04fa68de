import { describe, expect, it } from 'vitest';
import { ImageError, MemoryDevice, MemorySink, type BlockDevice } from '@amitrans/block';
import { prng } from '@amitrans/testkit';
import { DiskType, openVhd, parseFooter, serializeFooter, vhdChecksum, writeVhd } from '../src/index.js';

const MIB = 1024 * 1024;
const REPRO = { uuid: '00112233-4455-6677-8899-aabbccddeeff', timestamp: '1700000000' };

/** A small disk with data in blocks 0 and 2 of 2 MiB, as bytes. */
function sampleDisk(size = 5 * MIB): MemoryDevice {
  const bytes = new Uint8Array(size);
  const rnd = prng(7);
  bytes.set(rnd.bytes(8192), 1000);
  bytes.set(rnd.bytes(4096), 4 * MIB + 512);
  return new MemoryDevice(bytes, { writable: false });
}

async function image(options: Record<string, string>, disk: BlockDevice = sampleDisk()): Promise<Uint8Array> {
  const sink = new MemorySink();
  await writeVhd(disk, sink, { options: { ...REPRO, ...options } });
  await sink.commit();
  return sink.bytes.slice();
}

function flip(b: Uint8Array, at: number): void {
  b[at] = (b[at] ?? 0) ^ 1;
}

function setU32(b: Uint8Array, at: number, v: number): void {
  new DataView(b.buffer, b.byteOffset).setUint32(at, v, false);
}

/** Recompute the footer (at `at`) and dynamic header (at `h`) checksums after an edit. */
function fixFooter(b: Uint8Array, at: number): void {
  setU32(b, at + 64, vhdChecksum(b.subarray(at, at + 512), 64));
}
function fixHeader(b: Uint8Array, at = 512): void {
  setU32(b, at + 36, vhdChecksum(b.subarray(at, at + 1024), 36));
}

/** Apply the same footer edit to the copy at 0 and the footer at the end. */
function editFooters(b: Uint8Array, edit: (footer: Uint8Array) => void): void {
  for (const at of [0, b.length - 512]) {
    edit(b.subarray(at, at + 512));
    fixFooter(b, at);
  }
}

async function openBytes(bytes: Uint8Array): Promise<BlockDevice> {
  return openVhd(new MemoryDevice(bytes, { writable: false }));
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    const dev = await p;
    if (dev && typeof dev === 'object' && 'size' in dev) await readSome(dev as BlockDevice);
    return 'ok';
  } catch (err) {
    if (err instanceof ImageError) return err.code;
    throw err;
  }
}

/** Walk the whole map and read the start, the end and a few random places. */
async function readSome(dev: BlockDevice, limit = 8 * MIB, rnd?: { int(lo: number, hi: number): number }): Promise<void> {
  for await (const _ of dev.extents()) void _;
  const buf = new Uint8Array(Math.min(dev.size, limit));
  await dev.read(buf, 0);
  if (dev.size > limit) await dev.read(new Uint8Array(4096), dev.size - 4096);
  for (let k = 0; rnd && k < 3 && dev.size > limit; k++) await dev.read(buf, rnd.int(0, dev.size - buf.length));
}

describe('VHD hostile inputs: specific cases', () => {
  it('a BAT entry past the end of the file is E_TRUNCATED', async () => {
    const b = await image({ subformat: 'dynamic' });
    setU32(b, 1536 + 4, 0x00ffff00);
    expect(await codeOf(openBytes(b))).toBe('E_TRUNCATED');
  });

  it('a BAT entry pointing into the metadata is E_OVERLAP', async () => {
    const b = await image({ subformat: 'dynamic' });
    setU32(b, 1536, 1);
    expect(await codeOf(openBytes(b))).toBe('E_OVERLAP');
  });

  it('bad footer and header checksums are E_BAD_CHECKSUM', async () => {
    const b = await image({ subformat: 'dynamic' });
    flip(b, 30);
    expect(await codeOf(openBytes(b))).toBe('E_BAD_CHECKSUM');
    const c = await image({ subformat: 'dynamic' });
    flip(c, 512 + 28);
    expect(await codeOf(openBytes(c))).toBe('E_BAD_CHECKSUM');
    const f = await image({ subformat: 'fixed' });
    flip(f, f.length - 512 + 50);
    expect(await codeOf(openBytes(f))).toBe('E_BAD_CHECKSUM');
  });

  it('a differencing disk is E_UNSUPPORTED with a clear message', async () => {
    const b = await image({ subformat: 'dynamic' });
    editFooters(b, (f) => setU32(f, 60, DiskType.differencing));
    await expect(openBytes(b)).rejects.toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringContaining('differencing') });
  });

  it('absurd or non-power-of-two block sizes are E_CORRUPT', async () => {
    for (const blockSize of [3 * MIB, 1 << 30, 256, 0]) {
      const b = await image({ subformat: 'dynamic' });
      setU32(b, 512 + 32, blockSize);
      fixHeader(b);
      expect(await codeOf(openBytes(b))).toBe('E_CORRUPT');
    }
  });

  it('max_table_entries smaller than the size needs is E_CORRUPT; a BAT larger than the file is E_TRUNCATED', async () => {
    const b = await image({ subformat: 'dynamic' });
    setU32(b, 512 + 28, 2);
    fixHeader(b);
    expect(await codeOf(openBytes(b))).toBe('E_CORRUPT');
    const c = await image({ subformat: 'dynamic' });
    setU32(c, 512 + 28, 0x00ffffff);
    fixHeader(c);
    expect(await codeOf(openBytes(c))).toBe('E_TRUNCATED');
  });

  it('a truncated file is a typed error, never wrong data', async () => {
    const b = await image({ subformat: 'dynamic' });
    expect(await codeOf(openBytes(b.slice(0, 3 * MIB)))).toBe('E_TRUNCATED');
    expect(await codeOf(openBytes(b.slice(0, 1000)))).toBe('E_TRUNCATED');
    expect(await codeOf(openBytes(b.slice(0, 100)))).toBe('E_BAD_MAGIC');
    const f = await image({ subformat: 'fixed' });
    expect(await codeOf(openBytes(f.slice(0, f.length - 100)))).toBe('E_BAD_MAGIC');
  });

  it('a fixed footer that claims more data than precedes it is E_TRUNCATED', async () => {
    const f = await image({ subformat: 'fixed', force_size: 'on' });
    const at = f.length - 512;
    new DataView(f.buffer).setBigUint64(at + 48, BigInt(64 * MIB), false);
    fixFooter(f, at);
    expect(await codeOf(openBytes(f))).toBe('E_TRUNCATED');
  });
});

describe('VHD reader details', () => {
  it('reads a fixed VHD with a 511-byte (pre-2004 Virtual PC) footer', async () => {
    const disk = sampleDisk();
    const f = await image({ subformat: 'fixed', force_size: 'on' }, disk);
    const dev = await openBytes(f.slice(0, f.length - 1));
    const out = new Uint8Array(dev.size);
    await dev.read(out, 0);
    expect(Buffer.compare(out, disk.bytes)).toBe(0);
  });

  it('sizes by CHS only for creators "vpc " and "qemu", else by current_size', async () => {
    // 5 MiB exact with a geometry whose product is smaller (Hyper-V style).
    for (const [creator, expected] of [['vpc ', 'chs'], ['qemu', 'chs'], ['win ', 'cur'], ['wa\0\0', 'cur'], ['qem2', 'cur']] as const) {
      const f = await image({ subformat: 'fixed', force_size: 'on' });
      const at = f.length - 512;
      const footer = parseFooter(f.subarray(at));
      const geometry = { cylinders: 150, heads: 4, sectorsPerTrack: 17 };
      f.set(serializeFooter({ ...footer, creatorApplication: creator, geometry }), at);
      const dev = await openBytes(f);
      expect(dev.size).toBe(expected === 'chs' ? 150 * 4 * 17 * 512 : 5 * MIB);
    }
  });

  it('sectors whose bitmap bit is 0 read as zero and map as unallocated', async () => {
    const disk = sampleDisk();
    const b = await image({ subformat: 'dynamic', force_size: 'on' }, disk);
    const entry = new DataView(b.buffer).getUint32(1536, false);
    b[entry * 512] = 0b01111111; // sector 0 of block 0 "not present"
    b[entry * 512 + 1] = 0b11111110; // sector 15 too
    const dev = await openBytes(b);
    const out = new Uint8Array(dev.size);
    await dev.read(out, 0);
    const expected = disk.bytes.slice();
    expected.fill(0, 0, 512);
    expected.fill(0, 15 * 512, 16 * 512);
    expect(Buffer.compare(out, expected)).toBe(0);
    const map = [];
    for await (const e of dev.extents({ offset: 0, length: 2 * MIB })) map.push(e);
    expect(map.slice(0, 4)).toEqual([
      { offset: 0, length: 512, kind: 'unallocated' },
      { offset: 512, length: 14 * 512, kind: 'data' },
      { offset: 15 * 512, length: 512, kind: 'unallocated' },
      { offset: 16 * 512, length: 2 * MIB - 16 * 512, kind: 'data' },
    ]);
    // Unaligned reads across the boundary.
    const part = new Uint8Array(700);
    await dev.read(part, 100);
    expect(Buffer.compare(part, expected.subarray(100, 800))).toBe(0);
  });
});

describe('VHD fuzz', () => {
  it('thousands of mutated footers, headers and BATs give only ImageError', async () => {
    const dynamic = await image({ subformat: 'dynamic' });
    const fixed = await image({ subformat: 'fixed', force_size: 'on' });
    const rnd = prng(2024);
    const codes = new Map<string, number>();
    const work = { dynamic: dynamic.slice(), fixed: fixed.slice() };
    for (let i = 0; i < 3000; i++) {
      const isFixed = i % 3 === 0;
      const base = isFixed ? fixed : dynamic;
      const b = isFixed ? work.fixed : work.dynamic;
      const hot: [number, number] = isFixed ? [b.length - 512, b.length] : [0, 2048 + 512];
      const touched: number[] = [];
      const flips = rnd.int(1, 6);
      for (let k = 0; k < flips; k++) {
        const at = rnd.next() < 0.2 && !isFixed ? rnd.int(0, b.length - 1) : rnd.int(hot[0], hot[1] - 1);
        const r = rnd.next();
        b[at] = r < 0.3 ? 0xff : r < 0.5 ? 0 : rnd.int(0, 255);
        touched.push(at);
      }
      // Usually re-seal the checksums so the mutation reaches the fields behind them.
      if (rnd.next() < 0.8) {
        if (isFixed) fixFooter(b, b.length - 512);
        else {
          fixFooter(b, 0);
          fixFooter(b, b.length - 512);
          fixHeader(b);
        }
      }
      const cut = rnd.next() < 0.1 ? rnd.int(0, b.length) : b.length;
      let code = 'ok';
      try {
        const dev = await openBytes(b.subarray(0, cut));
        await readSome(dev, 64 * 1024, rnd);
      } catch (err) {
        if (!(err instanceof ImageError)) throw new Error(`mutation ${i}: ${String(err)}`, { cause: err });
        code = err.code;
      }
      codes.set(code, (codes.get(code) ?? 0) + 1);
      // Undo: the hot regions (flips and checksums) and any stray flip.
      b.set(base.subarray(0, 2560), 0);
      b.set(base.subarray(b.length - 512), b.length - 512);
      for (const at of touched) b[at] = base[at] ?? 0;
    }
    // The fuzzer must reach past the checksums into the structure checks.
    expect(codes.get('ok') ?? 0).toBeGreaterThan(0);
    expect(codes.get('E_CORRUPT') ?? 0).toBeGreaterThan(0);
    expect(codes.get('E_BAD_CHECKSUM') ?? 0).toBeGreaterThan(0);
  });
});
