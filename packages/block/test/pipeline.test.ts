import { inflateRawSync, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { prng } from '@amitrans/testkit';
import {
  BaseDevice,
  CoalescingSink,
  DeflatePool,

  MAX_WRITE,
  MemorySink,
  StreamSink,
  WriteBehind,
  clusterRuns,
  clusterWindows,
  copyToSink,
  isZeroAt,
  limiter,
  readAhead,
  zeroRuns,
  type Extent,
  type Range,
} from '../src/index.js';
import { PassThrough } from 'node:stream';

/** A memory device with a chosen extent map that counts and checks its reads. */
class MappedDevice extends BaseDevice {
  readonly reads: Range[] = [];
  inFlight = 0;
  maxInFlight = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly map: Extent[],
  ) {
    super(bytes.length, false, 'mapped device');
  }
  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.reads.push({ offset: position, length: buffer.length });
    await new Promise((r) => setTimeout(r, 1));
    buffer.set(this.bytes.subarray(position, position + buffer.length));
    this.inFlight--;
  }
  protected override async *_extents(range: Range): AsyncIterable<Extent> {
    for (const e of this.map) {
      const s = Math.max(e.offset, range.offset);
      const t = Math.min(e.offset + e.length, range.offset + range.length);
      if (t > s) yield { offset: s, length: t - s, kind: e.kind };
    }
  }
}

function randomDisk(seed: number, size: number): { bytes: Uint8Array; map: Extent[] } {
  const rnd = prng(seed).next;
  const bytes = new Uint8Array(size);
  const map: Extent[] = [];
  for (let at = 0; at < size; ) {
    const length = Math.min(size - at, 512 * (1 + Math.floor(rnd() * 64)));
    const r = rnd();
    const kind = r < 0.5 ? 'data' : r < 0.7 ? 'zero' : 'unallocated';
    if (kind === 'data') {
      // Data extents hold random bytes and whole zero blocks.
      for (let i = at; i < at + length; i++) bytes[i] = (i >> 12) % 3 === 0 ? 0 : Math.floor(rnd() * 256);
    }
    map.push({ offset: at, length, kind });
    at += length;
  }
  return { bytes, map };
}

describe('zero detection', () => {
  it('zeroRuns splits a buffer into maximal zero and data runs', () => {
    const buf = new Uint8Array(5 * 4096 + 100);
    buf[4096 + 7] = 1;
    buf[2 * 4096] = 2;
    buf[5 * 4096 + 99] = 3;
    expect([...zeroRuns(buf, 4096)]).toEqual([
      { start: 0, end: 4096, zero: true },
      { start: 4096, end: 3 * 4096, zero: false },
      { start: 3 * 4096, end: 5 * 4096, zero: true },
      { start: 5 * 4096, end: 5 * 4096 + 100, zero: false },
    ]);
    expect([...zeroRuns(new Uint8Array(10000), 4096)]).toEqual([{ start: 0, end: 10000, zero: true }]);
    expect([...zeroRuns(new Uint8Array(0), 4096)]).toEqual([]);
  });

  it('isZeroAt looks only at the range asked, across its 64 KiB steps', () => {
    const buf = new Uint8Array(200_000);
    buf[150_000] = 1;
    expect(isZeroAt(buf, 0, 150_000)).toBe(true);
    expect(isZeroAt(buf, 1, 150_001)).toBe(false);
    expect(isZeroAt(buf, 150_001, 200_000)).toBe(true);
  });
});

describe('readAhead', () => {
  it('yields every window in order with the right bytes, reading ahead, zero-filling outside pieces', async () => {
    const { bytes } = randomDisk(7, 300_000);
    const dev = new MappedDevice(bytes, [{ offset: 0, length: bytes.length, kind: 'data' }]);
    const plans = [];
    for (let at = 0; at < bytes.length; at += 40_000) {
      const length = Math.min(40_000, bytes.length - at);
      plans.push({ offset: at, length, pieces: [{ offset: at + 1000, length: Math.max(0, length - 3000) }] });
    }
    let n = 0;
    for await (const w of readAhead(dev, plans, { maxLength: 40_000, depth: 3 })) {
      const p = plans[n++]!;
      expect(w.offset).toBe(p.offset);
      const want = new Uint8Array(p.length);
      want.set(bytes.subarray(p.offset + 1000, p.offset + p.length - 2000), 1000);
      expect(Buffer.compare(w.data, want)).toBe(0);
      expect(w.bytesRead).toBe(p.length - 3000);
      // Slow consumer: the reads ahead must not touch the buffer being held.
      await new Promise((r) => setTimeout(r, 2));
      expect(Buffer.compare(w.data, want)).toBe(0);
    }
    expect(n).toBe(plans.length);
    expect(dev.maxInFlight).toBeGreaterThan(1);
    expect(dev.maxInFlight).toBeLessThanOrEqual(3);
  });

  it('passes a read error on, and refuses windows larger than its buffers', async () => {
    const dev = new MappedDevice(new Uint8Array(1000), []);
    const consume = async (plans: { offset: number; length: number }[]): Promise<void> => {
      for await (const _ of readAhead(dev, plans, { maxLength: 500 })) void _;
    };
    await expect(consume([{ offset: 900, length: 200 }])).rejects.toMatchObject({ code: 'E_OUT_OF_RANGE' });
    await expect(consume([{ offset: 0, length: 600 }])).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
  });
});

describe('clusterWindows', () => {
  it('gives whole clusters of the runs, reading only the data ranges', async () => {
    const { bytes, map } = randomDisk(3, 1_000_000 + 333);
    const dev = new MappedDevice(bytes, map);
    const ranges = map.filter((e) => e.kind === 'data').map(({ offset, length }) => ({ offset, length }));
    const cs = 65536;
    const runs = clusterRuns(ranges, cs);
    let read = 0;
    const seen: number[] = [];
    for await (const w of clusterWindows(dev, ranges, cs, { chunkSize: 3 * cs, onRead: (b) => (read += b) })) {
      for (let i = 0; i < w.count; i++) {
        const c = w.first + i;
        seen.push(c);
        const want = new Uint8Array(cs);
        for (const r of ranges) {
          const s = Math.max(r.offset, c * cs);
          const t = Math.min(r.offset + r.length, (c + 1) * cs, bytes.length);
          if (t > s) want.set(bytes.subarray(s, t), s - c * cs);
        }
        expect(Buffer.compare(w.data.subarray(i * cs, (i + 1) * cs), want), `cluster ${c}`).toBe(0);
      }
    }
    expect(seen).toEqual(runs.flatMap((r) => Array.from({ length: r.count }, (_, k) => r.first + k)));
    expect(read).toBe(ranges.reduce((t, r) => t + r.length, 0));
    for (const r of dev.reads) expect(ranges.some((d) => r.offset >= d.offset && r.offset + r.length <= d.offset + d.length)).toBe(true);
  });
});

describe('copyToSink', () => {
  for (const seed of [1, 2, 3]) {
    it(`copies a disk byte for byte, holes for zeros, to a file-like and a stream sink (seed ${seed})`, async () => {
      const { bytes, map } = randomDisk(seed, 700_000 + seed * 777);
      const dev = new MappedDevice(bytes, map);
      const sink = new MemorySink();
      await sink.write(new Uint8Array([9, 9, 9])); // copies start at the sink's position
      const r = await copyToSink(dev, sink, { chunkSize: 100_000 });
      await sink.commit();
      const want = new Uint8Array(bytes.length);
      for (const e of map) if (e.kind === 'data') want.set(bytes.subarray(e.offset, e.offset + e.length), e.offset);
      expect(sink.bytes.length).toBe(3 + bytes.length);
      expect(Buffer.compare(sink.bytes.subarray(3), want)).toBe(0);
      expect(r.bytesRead).toBe(map.filter((e) => e.kind === 'data').reduce((t, e) => t + e.length, 0));
      expect(r.bytesWritten).toBeLessThanOrEqual(r.bytesRead);

      const pass = new PassThrough();
      const chunks: Buffer[] = [];
      pass.on('data', (c: Buffer) => chunks.push(c));
      await copyToSink(dev, new StreamSink(pass), { chunkSize: 100_000 });
      expect(Buffer.compare(Buffer.concat(chunks), want)).toBe(0);
    });
  }
});

/**
 * A seekable sink whose positional writes finish late and out of order, and take the
 * caller's bytes only when they finish, as a thread-pool write does: a buffer reused
 * before its write is done shows up as wrong bytes.
 */
class LateSink extends MemorySink {
  pending = 0;
  maxPending = 0;
  failAfter = Infinity;
  constructor(private readonly rnd: () => number) {
    super();
  }
  override async pwrite(data: Uint8Array, position: number): Promise<void> {
    this.pending++;
    this.maxPending = Math.max(this.maxPending, this.pending);
    await new Promise((r) => setTimeout(r, Math.floor(this.rnd() * 4)));
    this.pending--;
    if (--this.failAfter < 0) throw new Error('disk full');
    await super.pwrite(data, position);
  }
}

/** MappedDevice with reads that finish at once, well before LateSink's writes. */
class QuickDevice extends MappedDevice {
  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    await Promise.resolve();
    buffer.set(this.bytes.subarray(position, position + buffer.length));
  }
}

describe('WriteBehind through copyToSink', () => {
  for (const seed of [4, 5]) {
    it(`keeps a window's bytes until its late writes are done, with two windows in flight (seed ${seed})`, async () => {
      const { bytes, map } = randomDisk(seed, 900_000 + seed);
      const dev = new QuickDevice(bytes, map);
      const sink = new LateSink(prng(seed).next);
      await sink.write(new Uint8Array([1, 2]));
      const r = await copyToSink(dev, sink, { chunkSize: 64 * 1024 });
      expect(sink.pending).toBe(0);
      expect(sink.position).toBe(2 + bytes.length);
      await sink.commit();
      const want = new Uint8Array(bytes.length);
      for (const e of map) if (e.kind === 'data') want.set(bytes.subarray(e.offset, e.offset + e.length), e.offset);
      expect(Buffer.compare(sink.bytes.subarray(2), want)).toBe(0);
      expect(r.bytesWritten).toBeLessThanOrEqual(r.bytesRead);
      expect(sink.maxPending).toBeGreaterThan(1);
    });
  }

  it('splits a write larger than MAX_WRITE into pwrites of at most MAX_WRITE that land where the whole would', async () => {
    const sink = new LateSink(prng(9).next);
    const sizes: number[] = [];
    const pwrite = sink.pwrite.bind(sink);
    sink.pwrite = (d: Uint8Array, at: number) => (sizes.push(d.length), pwrite(d, at));
    const big = prng(10).bytes(2 * MAX_WRITE + 12345);
    const small = prng(11).bytes(777);
    await WriteBehind.over(sink, async (out) => {
      out.skip(100);
      out.write(big);
      out.write(small);
      await out.endWindow();
    });
    expect(sizes).toEqual([MAX_WRITE, MAX_WRITE, 12345, 777]);
    expect(sink.position).toBe(100 + big.length + small.length);
    expect(Buffer.compare(sink.bytes.subarray(100, 100 + big.length), big)).toBe(0);
    expect(Buffer.compare(sink.bytes.subarray(100 + big.length, 100 + big.length + small.length), small)).toBe(0);
  });

  it('passes a failed write on, with no write left running behind it', async () => {
    const { bytes, map } = randomDisk(6, 900_000);
    const sink = new LateSink(prng(6).next);
    sink.failAfter = 5;
    await expect(copyToSink(new MappedDevice(bytes, map), sink, { chunkSize: 64 * 1024 })).rejects.toThrow('disk full');
    expect(sink.pending).toBe(0);
  });

  it('readAhead leaves the previous window intact until the one after the current is asked for', async () => {
    const { bytes } = randomDisk(8, 200_000);
    const dev = new MappedDevice(bytes, [{ offset: 0, length: bytes.length, kind: 'data' }]);
    const plans = Array.from({ length: 20 }, (_, i) => ({ offset: i * 10_000, length: 10_000 }));
    let previous: Uint8Array | undefined;
    let n = 0;
    for await (const w of readAhead(dev, plans, { maxLength: 10_000, depth: 2 })) {
      if (previous) expect(Buffer.compare(previous, bytes.subarray((n - 1) * 10_000, n * 10_000)), `window ${n - 1}`).toBe(0);
      await new Promise((r) => setTimeout(r, 1));
      previous = w.data;
      n++;
    }
    expect(n).toBe(20);
  });
});

describe('CoalescingSink', () => {
  it('gathers appends into few writes and keeps the bytes and their order', async () => {
    const inner = new MemorySink();
    let writes = 0;
    const write = inner.write.bind(inner);
    inner.write = (d: Uint8Array) => ((writes++), write(d));
    const sink = new CoalescingSink(inner, 1000);
    const rnd = prng(5).next;
    const want: number[] = [];
    for (let i = 0; i < 200; i++) {
      const chunk = Uint8Array.from({ length: Math.floor(rnd() * 300) }, () => Math.floor(rnd() * 256));
      await sink.write(chunk);
      want.push(...chunk);
      expect(sink.position).toBe(want.length);
    }
    await sink.write(new Uint8Array(1500).fill(7)); // larger than the buffer: straight through
    want.push(...new Uint8Array(1500).fill(7));
    await sink.pwrite(new Uint8Array([1, 2, 3]), 10);
    want.splice(10, 3, 1, 2, 3);
    await sink.skip(5);
    want.push(0, 0, 0, 0, 0);
    await sink.commit();
    expect(Array.from(inner.bytes)).toEqual(want);
    expect(writes).toBeLessThan(50);
  });
});

describe('DeflatePool and limiter', () => {
  it('deflates as zlib does, in both modes', async () => {
    const rnd = prng(9).next;
    const data = Uint8Array.from({ length: 65536 }, (_, i) => (i % 100 < 50 ? i & 7 : Math.floor(rnd() * 256)));
    const raw = new DeflatePool('raw4k');
    const zlib = new DeflatePool('zlib');
    const [a, b] = await Promise.all([raw.compress(data), zlib.compress(data)]);
    expect(Buffer.compare(inflateRawSync(a, { windowBits: 12 }), data)).toBe(0);
    expect(Buffer.compare(inflateSync(b), data)).toBe(0);
    await raw.close();
    await expect(raw.compress(data)).rejects.toThrow(/closed/);
  });

  it('limiter runs at most n tasks at once, in order', async () => {
    const run = limiter(2);
    let active = 0;
    let peak = 0;
    const order: number[] = [];
    await Promise.all(Array.from({ length: 10 }, (_, i) => run(async () => {
      active++;
      peak = Math.max(peak, active);
      order.push(i);
      await new Promise((r) => setTimeout(r, 1));
      active--;
    })));
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});


