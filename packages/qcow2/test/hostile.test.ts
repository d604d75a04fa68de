import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryDevice, MemorySink, ImageError, view, type BlockDevice } from '@amitrans/block';
import { prng, outcome } from '@amitrans/testkit';
import { parseHeader, qcow2Driver } from '../src/index.js';

/** A 5 MiB disk with 4 KiB clusters: data, zero and hole clusters, several L2 tables. */
function sourceDisk(): MemoryDevice {
  const rnd = prng(99);
  const bytes = new Uint8Array(5 * 1024 * 1024);
  for (let c = 0; c < bytes.length / 4096; c++) {
    const r = rnd.next();
    if (r < 0.3) bytes.set(rnd.bytes(4096), c * 4096);
    else if (r < 0.5) bytes.fill(c & 0xff, c * 4096, c * 4096 + 4096);
  }
  return new MemoryDevice(bytes, { writable: false });
}

async function image(options: Record<string, string>): Promise<Uint8Array> {
  const sink = new MemorySink();
  await qcow2Driver.write!(sourceDisk(), sink, { options: { cluster_size: '4096', ...options } });
  await sink.commit();
  return sink.bytes.slice();
}

/** Open, walk the map and read (a bounded amount of) the disk. */
async function exercise(bytes: Uint8Array): Promise<void> {
  const dev: BlockDevice = await qcow2Driver.open!(new MemoryDevice(bytes, { writable: false }));
  let n = 0;
  for await (const _ of dev.extents()) if (++n > 5000) break;
  const buf = new Uint8Array(256 * 1024);
  const limit = Math.min(dev.size, 4 * 1024 * 1024);
  for (let at = 0; at < limit; at += buf.length) await dev.read(buf.subarray(0, Math.min(buf.length, limit - at)), at);
  await dev.close();
}

function setU64(bytes: Uint8Array, at: number, v: bigint): void {
  view(bytes).setBigUint64(at, v);
}

let plain: Uint8Array;
let packed: Uint8Array;
beforeAll(async () => {
  plain = await image({});
  packed = await image({ compress: 'on' });
});

describe('qcow2 reader on hostile input', () => {
  it('reads the unmutated images back', async () => {
    for (const img of [plain, packed]) {
      const dev = await qcow2Driver.open!(new MemoryDevice(img, { writable: false }));
      const got = new Uint8Array(dev.size);
      await dev.read(got, 0);
      const want = new Uint8Array(dev.size);
      await sourceDisk().read(want, 0);
      expect(Buffer.compare(got, want)).toBe(0);
    }
  });

  it('gives only ImageError for thousands of seeded mutations of header, L1 and L2', async () => {
    const rnd = prng(2024);
    const codes = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const base = i % 2 === 0 ? plain : packed;
      const h = parseHeader(base);
      const bytes = base.slice();
      const regions = [
        { at: 0, length: 112 },
        { at: h.l1TableOffset, length: h.l1Size * 8 },
        // the L2 tables start right after the (one-cluster) L1 table
        { at: h.l1TableOffset + 4096, length: 4096 * 2 },
        { at: h.refcountTableOffset, length: 64 },
      ];
      const flips = rnd.int(1, 4);
      for (let f = 0; f < flips; f++) {
        const r = regions[rnd.int(0, regions.length - 1)]!;
        const at = r.at + rnd.int(0, r.length - 1);
        bytes[at] = rnd.next() < 0.5 ? rnd.int(0, 255) : bytes[at]! ^ (1 << rnd.int(0, 7));
      }
      if (rnd.next() < 0.1) bytes.fill(0, rnd.int(0, bytes.length));
      const got = await outcome(exercise(rnd.next() < 0.05 ? bytes.subarray(0, rnd.int(0, bytes.length)) : bytes));
      expect(got.startsWith('not ImageError'), got).toBe(false);
      codes.set(got, (codes.get(got) ?? 0) + 1);
    }
    // The mutations do reach the checks (not only the magic).
    expect(codes.size).toBeGreaterThan(4);
  });

  it('refuses an L1 entry past the end of the file', async () => {
    const bytes = plain.slice();
    const h = parseHeader(bytes);
    setU64(bytes, h.l1TableOffset, (BigInt(bytes.length) + 4096n * 10n) | (1n << 63n));
    expect(await outcome(exercise(bytes))).toBe('E_OUT_OF_RANGE');
  });

  it('refuses an L2 table that is the L1 table or the header, and data inside its own L2 table', async () => {
    const h = parseHeader(plain);
    const self = plain.slice();
    setU64(self, h.l1TableOffset, BigInt(h.l1TableOffset));
    expect(await outcome(exercise(self))).toBe('E_LOOP');
    const l2 = Number(view(plain).getBigUint64(h.l1TableOffset) & 0x00fffffffffffe00n);
    const loop = plain.slice();
    setU64(loop, l2, BigInt(l2) | (1n << 63n));
    expect(await outcome(exercise(loop))).toBe('E_LOOP');
  });

  it('refuses unknown incompatible bits, backing files, encryption, external data, extended L2, zstd', async () => {
    const cases: [number, bigint | number, number, string][] = [
      [72, 1n << 20n, 8, 'E_UNSUPPORTED'],
      [72, 1n << 2n, 8, 'E_UNSUPPORTED'],
      [72, 1n << 4n, 8, 'E_UNSUPPORTED'],
      [8, 512n, 8, 'E_UNSUPPORTED'],
      [32, 2, 4, 'E_UNSUPPORTED'],
      [20, 40, 4, 'E_CORRUPT'],
      [20, 8, 4, 'E_CORRUPT'],
      [100, 1001, 4, 'E_CORRUPT'],
      [100, 8192, 4, 'E_CORRUPT'],
      [96, 9, 4, 'E_CORRUPT'],
    ];
    for (const [at, value, width, code] of cases) {
      const bytes = plain.slice();
      if (width === 8) setU64(bytes, at, BigInt(value));
      else view(bytes).setUint32(at, Number(value));
      expect(await outcome(exercise(bytes)), `offset ${at} = ${value}`).toBe(code);
    }
    const zstd = plain.slice();
    setU64(zstd, 72, 1n << 3n);
    zstd[104] = 1;
    expect(await outcome(exercise(zstd))).toBe('E_UNSUPPORTED');
  });

  it('reads a dirty image and says so', async () => {
    const bytes = plain.slice();
    setU64(bytes, 72, 1n);
    const dev = await qcow2Driver.open!(new MemoryDevice(bytes, { writable: false }));
    expect((dev as unknown as { dirty: boolean }).dirty).toBe(true);
  });

  it('gives a typed error for a truncated compressed cluster', async () => {
    const h = parseHeader(packed);
    const l2 = Number(view(packed).getBigUint64(h.l1TableOffset) & 0x00fffffffffffe00n);
    // find the first compressed entry
    let host = -1;
    for (let i = 0; i < 512; i++) {
      const e = view(packed).getBigUint64(l2 + i * 8);
      if (e & (1n << 62n)) {
        host = Number(e & ((1n << 58n) - 1n));
        break;
      }
    }
    expect(host).toBeGreaterThan(0);
    const code = await outcome(exercise(packed.subarray(0, host + 20)));
    expect(['E_CORRUPT', 'E_OUT_OF_RANGE', 'E_TRUNCATED']).toContain(code);
    const garbage = packed.slice();
    garbage.fill(0xff, host, host + 64);
    expect(await outcome(exercise(garbage))).toBe('E_CORRUPT');
  });

  it('errors carry the structure and byte offset', async () => {
    const bytes = plain.slice();
    const h = parseHeader(bytes);
    setU64(bytes, h.l1TableOffset + 8, 4097n);
    expect(h.l1Size).toBeGreaterThan(1);
    try {
      await exercise(bytes);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ImageError);
      expect((err as ImageError).structure).toBe('qcow2 L1 entry');
      expect((err as ImageError).offset).toBe(h.l1TableOffset + 8);
    }
  });
});
