import { BaseDevice, ExtentRun, ImageError, inflateUnit, limiter, readAt, readUnits, settleAll, TableCache, type BlockDevice, type CompressedPart, type Extent, type ExtentKind, type Range, type UnitPlace } from '@amitrans/block';
import { isDirty, parseExtensions, parseHeader, type Qcow2Header } from './header.js';
import { parseL1, parseL2, type ClusterMapping } from './tables.js';
import { MAX_L1_BYTES } from './limits.js';

/** QEMU's QCOW_MAX_L1_SIZE: 32 MiB of L1 entries. */
/** Bytes of decoded L2 tables kept in the LRU cache. */
const L2_CACHE_BYTES = 32 * 1024 * 1024;
/** Largest read from the container in one request. */
const MAX_RUN = 2 * 1024 * 1024;
/** Enough concurrent inflates to keep every core busy, few enough to bound their memory. */
const INFLATES_IN_FLIGHT = 8;
/** Neighbouring compressed clusters closer than this on the host are read in one request. */
const COMPRESSED_GAP = 64 * 1024;

/** A qcow2 image read as its virtual disk. */
export class Qcow2Device extends BaseDevice {
  readonly header: Qcow2Header;
  /** The image was not closed cleanly: refcounts may be stale, the data is still readable. */
  readonly dirty: boolean;
  private readonly container: BlockDevice;
  private readonly clusterSize: number;
  private readonly l2Entries: number;
  private readonly l1: Float64Array;
  private readonly l2Cache: TableCache<ClusterMapping[]>;
  private lastCompressed: { host: number; data: Uint8Array } | undefined;
  /** Inflates in flight on the thread pool, for every read of this device together. */
  private readonly inflating = limiter(INFLATES_IN_FLIGHT);

  private constructor(container: BlockDevice, header: Qcow2Header, l1: Float64Array) {
    super(header.size, false, 'qcow2 image');
    this.container = container;
    this.header = header;
    this.dirty = isDirty(header);
    this.clusterSize = 2 ** header.clusterBits;
    this.l2Entries = this.clusterSize / 8;
    this.l1 = l1;
    this.l2Cache = new TableCache(L2_CACHE_BYTES, this.clusterSize);
  }

  static async open(container: BlockDevice): Promise<Qcow2Device> {
    const fileSize = container.size;
    const head = await readAt(container, 0, Math.min(fileSize, 4096));
    const h = parseHeader(head);
    const clusterSize = 2 ** h.clusterBits;
    const cluster0 = h.headerLength + 8 > head.length ? await readAt(container, 0, Math.min(fileSize, clusterSize)) : head;
    parseExtensions(h, cluster0);

    // The L1 table must cover the virtual size, and is bounded by QEMU's limit and the file.
    const bytesPerL1 = clusterSize * (clusterSize / 8);
    const needed = Math.ceil(h.size / bytesPerL1);
    const where = { structure: 'qcow2 header', offset: 36 };
    if (h.l1Size < needed) throw new ImageError('E_CORRUPT', `l1_size ${h.l1Size} cannot cover ${h.size} bytes (needs ${needed})`, where);
    if (h.l1Size * 8 > MAX_L1_BYTES) throw new ImageError('E_TOO_LARGE', `l1_size ${h.l1Size} is above QEMU's 32 MiB L1 limit`, where);
    if (h.l1TableOffset % clusterSize !== 0) {
      throw new ImageError('E_CORRUPT', `l1_table_offset ${h.l1TableOffset} is not cluster aligned`, { structure: 'qcow2 header', offset: 40 });
    }
    // Only the entries covering the virtual size are used; the rest may be padding.
    const l1Bytes = needed * 8;
    if (needed > 0 && h.l1TableOffset === 0) throw new ImageError('E_LOOP', 'the L1 table overlaps the header', { structure: 'qcow2 header', offset: 40 });
    if (h.l1TableOffset + l1Bytes > fileSize) {
      throw new ImageError('E_OUT_OF_RANGE', `the L1 table (${l1Bytes} bytes at ${h.l1TableOffset}) lies past the end of the ${fileSize}-byte file`, { structure: 'qcow2 header', offset: 40 });
    }
    const l1 = parseL1(await readAt(container, h.l1TableOffset, l1Bytes), h.l1TableOffset, clusterSize, fileSize);
    const l1End = h.l1TableOffset + l1Bytes;
    for (let i = 0; i < l1.length; i++) {
      const off = l1[i]!;
      if (off !== 0 && (off < clusterSize || (off < l1End && off + clusterSize > h.l1TableOffset))) {
        throw new ImageError('E_LOOP', `L1 entry ${i} points the L2 table at the header or the L1 table itself`, { structure: 'qcow2 L1 entry', offset: h.l1TableOffset + i * 8 });
      }
    }
    return new Qcow2Device(container, h, l1);
  }

  /** The decoded L2 table for L1 index `i`, or undefined when there is none. */
  private l2(i: number): Promise<ClusterMapping[]> | undefined {
    const off = this.l1[i]!;
    if (off === 0) return undefined;
    return this.l2Cache.get(i, async () => {
      const buf = await readAt(this.container, off, this.clusterSize);
      const forbidden = [
        { offset: 0, length: this.clusterSize },
        { offset: this.header.l1TableOffset, length: this.l1.length * 8 },
        { offset: off, length: this.clusterSize },
      ];
      return parseL2(buf, off, { clusterBits: this.header.clusterBits, version: this.header.version, fileSize: this.container.size }, forbidden);
    });
  }

  private async mapping(cluster: number): Promise<ClusterMapping> {
    const table = this.l2(Math.floor(cluster / this.l2Entries));
    if (!table) return { kind: 'unallocated' };
    return (await table)[cluster % this.l2Entries]!;
  }

  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    await readUnits(buffer, position, {
      container: this.container,
      unitBytes: this.clusterSize,
      maxRun: MAX_RUN,
      place: async (cluster): Promise<UnitPlace> => {
        const m = await this.mapping(cluster);
        if (m.kind === 'data') return { kind: 'raw', host: m.hostOffset };
        return m.kind === 'compressed' ? { kind: 'compressed', host: m.hostOffset, length: m.length } : { kind: 'zero' };
      },
      recent: (host) => (this.lastCompressed?.host === host ? this.lastCompressed.data : undefined),
      spans: compressedSpans,
      readSpan: (buf, span) => this.readCompressed(buf, span),
    });
  }

  /** Compressed clusters near each other on the host: one read, then one inflate each. */
  private async readCompressed(buffer: Uint8Array, parts: CompressedPart[]): Promise<void> {
    const first = parts[0]!.host;
    // Compressed data may spill into the next cluster and may be cut by EOF: read what exists.
    const last = Math.min(this.container.size, Math.max(...parts.map((p) => p.host + p.length)));
    const span = await readAt(this.container, first, Math.max(0, last - first));
    const inflates = parts.map(async (p) => {
      const input = span.subarray(p.host - first, Math.min(span.length, p.host - first + p.length));
      const out = await this.inflateCluster(input, p.host);
      buffer.set(out.subarray(p.within, p.within + p.n), p.from);
      this.lastCompressed = { host: p.host, data: out };
    });
    await settleAll(inflates);
  }

  private async inflateCluster(input: Uint8Array, host: number): Promise<Uint8Array> {
    const where = { structure: 'qcow2 compressed cluster', offset: host };
    const out = await inflateUnit(input, { unitBytes: this.clusterSize, zlib: false, what: 'compressed cluster', where, run: this.inflating });
    if (out.length !== this.clusterSize) {
      throw new ImageError('E_CORRUPT', `compressed cluster inflates to ${out.length} bytes, not one ${this.clusterSize}-byte cluster`, where);
    }
    return out;
  }

  protected override async *_extents(range: Range): AsyncIterable<Extent> {
    const cs = this.clusterSize;
    const end = range.offset + range.length;
    const runs = new ExtentRun();
    for (let at = range.offset; at < end; ) {
      const cluster = Math.floor(at / cs);
      const l1i = Math.floor(cluster / this.l2Entries);
      const table = this.l2(l1i);
      if (!table) {
        // No L2 table: the whole L2 range is unallocated.
        const stop = Math.min(end, (l1i + 1) * this.l2Entries * cs);
        const out = runs.add(at, stop - at, 'unallocated');
        if (out) yield out;
        at = stop;
        continue;
      }
      const entries = await table;
      const stop = Math.min(end, (l1i + 1) * this.l2Entries * cs);
      while (at < stop) {
        const c = Math.floor(at / cs);
        const next = Math.min(stop, (c + 1) * cs);
        const m = entries[c % this.l2Entries]!;
        const kind: ExtentKind = m.kind === 'compressed' ? 'data' : m.kind;
        const out = runs.add(at, next - at, kind);
        if (out) yield out;
        at = next;
      }
    }
    const last = runs.finish();
    if (last) yield last;
  }
}

/** Group compressed clusters (in read order) into host spans worth one read each. */
function* compressedSpans(parts: readonly CompressedPart[]): Iterable<CompressedPart[]> {
  let span: CompressedPart[] = [];
  let spanEnd = 0;
  for (const p of parts) {
    const start = span.length > 0 ? span[0]!.host : p.host;
    const near = span.length > 0 && p.host >= start && p.host <= spanEnd + COMPRESSED_GAP && p.host + p.length - start <= MAX_RUN;
    if (!near && span.length > 0) {
      yield span;
      span = [];
    }
    span.push(p);
    spanEnd = Math.max(span.length > 1 ? spanEnd : 0, p.host + p.length);
  }
  if (span.length > 0) yield span;
}
