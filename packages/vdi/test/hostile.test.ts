import { describe, expect, it } from 'vitest';
import { ImageError, MemoryDevice, MemorySink, type BlockDevice } from '@amitrans/block';
import { prng } from '@amitrans/testkit';
import { ImageType, openVdi, writeVdi } from '../src/index.js';

const MIB = 1024 * 1024;

function sampleDisk(size = 4 * MIB): MemoryDevice {
  const bytes = new Uint8Array(size);
  const rnd = prng(5);
  bytes.set(rnd.bytes(8192), 100);
  bytes.set(rnd.bytes(4096), 2 * MIB + 512);
  bytes.set(rnd.bytes(512), 3 * MIB + 512);
  return new MemoryDevice(bytes, { writable: false });
}

async function image(options: Record<string, string> = {}, disk: BlockDevice = sampleDisk()): Promise<Uint8Array> {
  const sink = new MemorySink();
  await writeVdi(disk, sink, { options: { uuid: '00112233-4455-6677-8899-aabbccddeeff', ...options } });
  await sink.commit();
  return sink.bytes.slice();
}

const u32 = (b: Uint8Array, at: number, v: number): void => new DataView(b.buffer, b.byteOffset).setUint32(at, v, true);
const MAP = MIB; // offBlocks of our images

async function codeOf(bytes: Uint8Array): Promise<string> {
  try {
    const dev = await openVdi(new MemoryDevice(bytes, { writable: false }));
    await readSome(dev);
    return 'ok';
  } catch (err) {
    if (err instanceof ImageError) return err.code;
    throw err;
  }
}

async function readSome(dev: BlockDevice, rnd?: { int(lo: number, hi: number): number }): Promise<void> {
  for await (const _ of dev.extents()) void _;
  const buf = new Uint8Array(Math.min(dev.size, 64 * 1024));
  await dev.read(buf, 0);
  await dev.read(buf, dev.size - buf.length);
  for (let k = 0; rnd && k < 3; k++) await dev.read(buf, rnd.int(0, dev.size - buf.length));
}

describe('VDI hostile inputs: specific cases', () => {
  it('a map entry past the end of the file is E_TRUNCATED', async () => {
    const b = await image();
    u32(b, MAP + 4, 1000);
    expect(await codeOf(b)).toBe('E_TRUNCATED');
  });

  it('two map entries sharing a data block are E_CORRUPT', async () => {
    const b = await image();
    const v = new DataView(b.buffer);
    u32(b, MAP + 4, v.getUint32(MAP, true));
    expect(await codeOf(b)).toBe('E_CORRUPT');
  });

  it('differencing and undo images, or a parent UUID, are E_UNSUPPORTED', async () => {
    for (const type of [ImageType.diff, ImageType.undo]) {
      const b = await image();
      u32(b, 0x4c, type);
      expect(await codeOf(b)).toBe('E_UNSUPPORTED');
    }
    const c = await image();
    c[0x1a8] = 1;
    await expect(openVdi(new MemoryDevice(c))).rejects.toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringContaining('parent') });
  });

  it('absurd block sizes and block counts are typed errors', async () => {
    for (const [at, value, code] of [
      [0x178, 3 * MIB, 'E_CORRUPT'],
      [0x178, 1 << 30, 'E_CORRUPT'],
      [0x178, 256, 'E_CORRUPT'],
      [0x17c, 2 * MIB, 'E_CORRUPT'],
      [0x180, 2, 'E_CORRUPT'],
      [0x180, 0x7fffffff, 'E_TOO_LARGE'],
      [0x180, 0x00400000, 'E_TRUNCATED'],
      [0x180, 0x00100000, 'E_OVERLAP'],
      [0x154, 0, 'E_OVERLAP'],
    ] as const) {
      const b = await image();
      u32(b, at, value);
      expect(await codeOf(b), `field 0x${at.toString(16)} = ${value}`).toBe(code);
    }
  });

  it('wrong signature, version or header size', async () => {
    const b = await image();
    u32(b, 0x40, 0x12345678);
    expect(await codeOf(b)).toBe('E_BAD_MAGIC');
    const c = await image();
    u32(c, 0x44, 0x00010000);
    expect(await codeOf(c)).toBe('E_UNSUPPORTED');
    const d = await image();
    u32(d, 0x48, 0x200);
    expect(await codeOf(d)).toBe('E_UNSUPPORTED');
  });

  it('a truncated file is a typed error, never wrong data', async () => {
    const b = await image();
    expect(await codeOf(b.slice(0, b.length - 4096))).toBe('E_TRUNCATED');
    expect(await codeOf(b.slice(0, MIB + 2))).toBe('E_TRUNCATED');
    expect(await codeOf(b.slice(0, 300))).toBe('E_TRUNCATED');
    expect(await codeOf(b.slice(0, 10))).toBe('E_TRUNCATED');
  });

  it('zero-marked blocks (0xFFFFFFFE) read as zeros and map as zero', async () => {
    const b = await image();
    u32(b, MAP, 0xfffffffe);
    const dev = await openVdi(new MemoryDevice(b, { writable: false }));
    const first = new Uint8Array(MIB);
    await dev.read(first, 0);
    expect(first.every((x) => x === 0)).toBe(true);
    const kinds = [];
    for await (const e of dev.extents()) kinds.push(e.kind);
    expect(kinds).toEqual(['zero', 'unallocated', 'data', 'data']);
  });

  it('honours block extra bytes and other power-of-two block sizes', async () => {
    // Hand-build: 512 KiB blocks with 512 extra bytes, map at 0x200, data right after.
    const b = await image();
    const disk = sampleDisk();
    const bs = 512 * 1024;
    const extra = 512;
    const blocks = disk.size / bs;
    const offData = 0x200 + 512;
    const out = new Uint8Array(offData + blocks * (bs + extra));
    out.set(b.subarray(0, 512));
    u32(out, 0x154, 0x200);
    u32(out, 0x158, offData);
    u32(out, 0x178, bs);
    u32(out, 0x17c, extra);
    u32(out, 0x180, blocks);
    u32(out, 0x184, blocks);
    for (let i = 0; i < blocks; i++) {
      const slot = blocks - 1 - i; // stored in reverse order
      u32(out, 0x200 + i * 4, slot);
      out.fill(0xee, offData + slot * (bs + extra), offData + slot * (bs + extra) + extra);
      out.set(disk.bytes.subarray(i * bs, (i + 1) * bs), offData + slot * (bs + extra) + extra);
    }
    const dev = await openVdi(new MemoryDevice(out, { writable: false }));
    const back = new Uint8Array(dev.size);
    await dev.read(back, 0);
    expect(Buffer.compare(back, disk.bytes)).toBe(0);
  });
});

describe('VDI fuzz', () => {
  it('thousands of mutated headers and maps give only ImageError', async () => {
    const base = await image({}, sampleDisk(4 * MIB + 1024));
    const b = base.slice();
    const rnd = prng(99);
    const codes = new Map<string, number>();
    const fields = [0x40, 0x44, 0x48, 0x4c, 0x154, 0x158, 0x168, 0x170, 0x174, 0x178, 0x17c, 0x180, 0x184, 0x1a8, 0x1b8];
    for (let i = 0; i < 4000; i++) {
      const touched: number[] = [];
      const flips = rnd.int(1, 5);
      for (let k = 0; k < flips; k++) {
        const r = rnd.next();
        // Aim at the fields most of the time, at the map (entries 0..3) and anywhere else sometimes.
        const at = r < 0.6 ? (fields[rnd.int(0, fields.length - 1)] ?? 0) + rnd.int(0, 3)
          : r < 0.9 ? MAP + rnd.int(0, 15) : rnd.int(0, 511);
        const v = rnd.next();
        b[at] = v < 0.3 ? 0xff : v < 0.5 ? 0 : v < 0.6 ? 0xfe : rnd.int(0, 255);
        touched.push(at);
      }
      const cut = rnd.next() < 0.1 ? rnd.int(0, b.length) : b.length;
      let code = 'ok';
      try {
        const dev = await openVdi(new MemoryDevice(b.subarray(0, cut), { writable: false }));
        await readSome(dev, rnd);
      } catch (err) {
        if (!(err instanceof ImageError)) throw new Error(`mutation ${i}: ${String(err)}`, { cause: err });
        code = err.code;
      }
      codes.set(code, (codes.get(code) ?? 0) + 1);
      for (const at of touched) b[at] = base[at] ?? 0;
    }
    expect(codes.get('ok') ?? 0).toBeGreaterThan(0);
    expect(codes.get('E_CORRUPT') ?? 0).toBeGreaterThan(0);
    expect(codes.get('E_TRUNCATED') ?? 0).toBeGreaterThan(0);
  });
});
