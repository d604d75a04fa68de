import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryDevice, MemorySink, ImageError, view, type BlockDevice } from '@amitrans/block';
import { prng, outcome } from '@amitrans/testkit';
import { parseHeader, vmdkDriver } from '../src/index.js';

/** A 3 MiB disk: random grains, constant grains and holes. */
function sourceDisk(): MemoryDevice {
  const rnd = prng(5);
  const bytes = new Uint8Array(3 * 1024 * 1024);
  for (let g = 0; g < bytes.length / 65536; g++) {
    const r = rnd.next();
    if (r < 0.4) bytes.set(rnd.bytes(65536), g * 65536);
    else if (r < 0.7) bytes.fill(g, g * 65536, g * 65536 + 65536);
  }
  return new MemoryDevice(bytes, { writable: false });
}

async function image(options: Record<string, string>): Promise<Uint8Array> {
  const sink = new MemorySink();
  await vmdkDriver.write!(sourceDisk(), sink, { options: { cid: '01020304', ...options } });
  await sink.commit();
  return sink.bytes.slice();
}

async function exercise(bytes: Uint8Array): Promise<void> {
  const dev: BlockDevice = await vmdkDriver.open!(new MemoryDevice(bytes, { writable: false }));
  let n = 0;
  for await (const _ of dev.extents()) if (++n > 5000) break;
  const buf = new Uint8Array(256 * 1024);
  const limit = Math.min(dev.size, 1024 * 1024);
  for (let at = 0; at < limit; at += buf.length) await dev.read(buf.subarray(0, Math.min(buf.length, limit - at)), at);
  await dev.close();
}

let sparse: Uint8Array;
let stream: Uint8Array;
beforeAll(async () => {
  sparse = await image({});
  stream = await image({ subformat: 'streamOptimized' });
});

function regions(bytes: Uint8Array): { at: number; length: number }[] {
  const h = parseHeader(bytes);
  const footer = h.gdOffset === -1 ? parseHeader(bytes.subarray(bytes.length - 1024), bytes.length - 1024) : h;
  const gd = footer.gdOffset * 512;
  const gt = view(bytes).getUint32(gd, true) * 512;
  const out = [
    { at: 0, length: 80 },
    { at: 512, length: 600 },
    { at: gd, length: 16 },
    { at: gt, length: 2048 },
  ];
  if (h.gdOffset === -1) out.push({ at: bytes.length - 1536, length: 1536 });
  // the first grain (marker and data)
  let first = 0;
  for (let k = 0; first === 0 && k < 512; k++) first = view(bytes).getUint32(gt + 4 * k, true) * 512;
  if (first > 0) out.push({ at: first, length: 64 });
  return out;
}

describe('VMDK reader on hostile input', () => {
  it('gives only ImageError for thousands of seeded mutations of header, descriptor, GD, GT, footer and grains', async () => {
    const rnd = prng(77);
    const codes = new Map<string, number>();
    const bases = [sparse, stream].map((b) => ({ bytes: b, regions: regions(b) }));
    for (let i = 0; i < 2000; i++) {
      const base = bases[i % 2]!;
      const bytes = base.bytes.slice();
      const flips = rnd.int(1, 4);
      for (let f = 0; f < flips; f++) {
        const r = base.regions[rnd.int(0, base.regions.length - 1)]!;
        const at = r.at + rnd.int(0, r.length - 1);
        bytes[at] = rnd.next() < 0.5 ? rnd.int(0, 255) : bytes[at]! ^ (1 << rnd.int(0, 7));
      }
      const input = rnd.next() < 0.05 ? bytes.subarray(0, rnd.int(0, bytes.length)) : bytes;
      const got = await outcome(exercise(input));
      expect(got.startsWith('not ImageError'), got).toBe(false);
      codes.set(got, (codes.get(got) ?? 0) + 1);
    }
    expect(codes.size).toBeGreaterThan(4);
  });

  it('refuses a grain table entry past the end of the file', async () => {
    const bytes = sparse.slice();
    const h = parseHeader(bytes);
    const gt = view(bytes).getUint32(h.gdOffset * 512, true) * 512;
    view(bytes).setUint32(gt, bytes.length / 512 + 100, true);
    expect(await outcome(exercise(bytes))).toBe('E_OUT_OF_RANGE');
  });

  it('refuses grain tables and grains that point into the metadata (loops)', async () => {
    const h = parseHeader(sparse);
    const gd = h.gdOffset * 512;
    const self = sparse.slice();
    view(self).setUint32(gd, h.gdOffset, true); // GT = the GD itself
    expect(await outcome(exercise(self))).toBe('E_LOOP');
    const gtSector = view(sparse).getUint32(gd, true);
    const grainInGt = sparse.slice();
    view(grainInGt).setUint32(gtSector * 512, gtSector, true); // grain = its own GT
    expect(await outcome(exercise(grainInGt))).toBe('E_LOOP');
  });

  it('refuses absurd grain sizes, GT sizes, versions and huge descriptors', async () => {
    const set = (at: number, v: bigint, width: 4 | 8): Uint8Array => {
      const b = sparse.slice();
      if (width === 8) view(b).setBigUint64(at, v, true);
      else view(b).setUint32(at, Number(v), true);
      return b;
    };
    expect(await outcome(exercise(set(20, 100n, 8)))).toBe('E_CORRUPT'); // not a power of two
    expect(await outcome(exercise(set(20, 4n, 8)))).toBe('E_CORRUPT');
    expect(await outcome(exercise(set(20, 1n << 20n, 8)))).toBe('E_CORRUPT');
    expect(await outcome(exercise(set(44, 0n, 4)))).toBe('E_CORRUPT');
    expect(await outcome(exercise(set(4, 9n, 4)))).toBe('E_UNSUPPORTED');
    expect(await outcome(exercise(set(36, 4096n, 8)))).toBe('E_TOO_LARGE'); // 2 MiB descriptor
    expect(await outcome(exercise(set(12, 1n << 60n, 8)))).toBe('E_TOO_LARGE'); // capacity
    expect(await outcome(exercise(set(12, 1n << 40n, 8)))).toBe('E_OUT_OF_RANGE'); // GD would run past EOF
  });

  it('refuses a descriptor file that is too big, COWD, deltas and seSparse', async () => {
    const big = new Uint8Array(2 * 1024 * 1024);
    big.set(Buffer.from('# Disk DescriptorFile\nversion=1\n'));
    expect(await outcome(exercise(big))).toBe('E_TOO_LARGE');
    const cowd = new Uint8Array(2048);
    cowd.set(Buffer.from('COWD'));
    expect(await outcome(exercise(cowd))).toBe('E_UNSUPPORTED');
    const delta = Buffer.from('# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=12345678\ncreateType="monolithicSparse"\nRW 100 SPARSE "x.vmdk"\n');
    expect(await outcome(exercise(delta))).toBe('E_UNSUPPORTED');
    const se = Buffer.from('# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="seSparse"\nRW 100 SESPARSE "x.vmdk"\n');
    expect(await outcome(exercise(se))).toBe('E_UNSUPPORTED');
    expect(await outcome(exercise(Buffer.from('hello world, not a disk')))).toBe('E_BAD_MAGIC');
  });

  it('gives a typed error for a truncated or damaged compressed grain', async () => {
    const h = parseHeader(stream.subarray(stream.length - 1024), stream.length - 1024);
    const gt = view(stream).getUint32(h.gdOffset * 512, true) * 512;
    let first = 0;
    for (let k = 0; first === 0; k++) first = view(stream).getUint32(gt + 4 * k, true) * 512;
    const damaged = stream.slice();
    damaged.fill(0xee, first + 12, first + 80);
    expect(await outcome(exercise(damaged))).toBe('E_CORRUPT');
    const oversized = stream.slice();
    view(oversized).setUint32(first + 8, 0x7fffffff, true);
    expect(await outcome(exercise(oversized))).toBe('E_CORRUPT');
    const cut = stream.slice();
    view(cut).setUint32(first + 8, stream.length, true);
    expect(['E_CORRUPT', 'E_TRUNCATED']).toContain(await outcome(exercise(cut)));
  });

  it('errors carry the structure and byte offset', async () => {
    const bytes = sparse.slice();
    const h = parseHeader(bytes);
    view(bytes).setUint32(h.gdOffset * 512 + 0, bytes.length, true);
    try {
      await exercise(bytes);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ImageError);
      expect((err as ImageError).structure).toBe('VMDK grain directory entry');
      expect((err as ImageError).offset).toBe(h.gdOffset * 512);
    }
  });
});
