import { BaseDevice, ExtentRun, ImageError, inflateUnit, limiter, readAt, readUnits, settleAll, TableCache, view, type BlockDevice, type CompressedPart, type Extent, type Range, type UnitPlace } from '@amitrans/block';
import { MAX_DESCRIPTOR_BYTES, parseDescriptor, type Descriptor } from './descriptor.js';
import { FLAG_COMPRESSED, FLAG_MARKERS, GD_AT_END, SECTOR, parseHeader, type SparseExtentHeader } from './header.js';
import { GRAIN_MARKER_BYTES, parseGrainMarker } from './marker.js';

/** Bytes of decoded grain tables kept in the LRU cache. */
const GT_CACHE_BYTES = 16 * 1024 * 1024;
const MAX_GD_BYTES = 64 * 1024 * 1024;
const MAX_RUN = 2 * 1024 * 1024;
/** Enough concurrent inflates to keep every core busy, few enough to bound their memory. */
const INFLATES_IN_FLIGHT = 8;

/** GTE values with a meaning of their own. */
const GTE_UNALLOCATED = 0;
const GTE_ZERO = 1;

interface Span {
  offset: number;
  length: number;
  what: string;
}

/** A VMDK hosted sparse extent (monolithicSparse, streamOptimized in both layouts) as a disk. */
export class SparseExtentDevice extends BaseDevice {
  readonly header: SparseExtentHeader;
  /** The embedded descriptor, when there is one. */
  readonly descriptor: Descriptor | undefined;
  private readonly container: BlockDevice;
  private readonly grainBytes: number;
  private readonly gtBytes: number;
  private readonly gd: Uint32Array;
  private readonly gdSpan: Span;
  private readonly gtCache: TableCache<Uint32Array>;
  private lastGrain: { sector: number; data: Uint8Array } | undefined;
  /** Inflates in flight on the thread pool, for every read of this device together. */
  private readonly inflating = limiter(INFLATES_IN_FLIGHT);

  private constructor(container: BlockDevice, header: SparseExtentHeader, descriptor: Descriptor | undefined, gd: Uint32Array, gdSpan: Span) {
    super(header.capacity * SECTOR, false, 'VMDK sparse extent');
    this.container = container;
    this.header = header;
    this.descriptor = descriptor;
    this.grainBytes = header.grainSize * SECTOR;
    this.gtBytes = header.numGTEsPerGT * 4;
    this.gd = gd;
    this.gdSpan = gdSpan;
    this.gtCache = new TableCache(GT_CACHE_BYTES, this.gtBytes);
  }

  get compressed(): boolean {
    return (this.header.flags & FLAG_COMPRESSED) !== 0;
  }

  static async open(container: BlockDevice): Promise<SparseExtentDevice> {
    const fileSize = container.size;
    let h = parseHeader(await readAt(container, 0, Math.min(fileSize, SECTOR)));
    if (h.gdOffset === GD_AT_END) {
      // Stream form: the footer (a header copy with the real gdOffset) sits before the EOS marker.
      if (fileSize < 3 * SECTOR) throw new ImageError('E_TRUNCATED', 'stream has no room for a footer', { structure: 'VMDK footer', offset: 0 });
      const at = fileSize - 2 * SECTOR;
      h = parseHeader(await readAt(container, at, SECTOR), at);
      if (h.gdOffset === GD_AT_END) throw new ImageError('E_CORRUPT', 'the footer also says the grain directory is at the end', { structure: 'VMDK footer', offset: at + 56 });
    }
    const descriptor = await readEmbeddedDescriptor(container, h);
    if (descriptor && descriptor.parentCid !== 0xffffffff) {
      throw new ImageError('E_UNSUPPORTED', 'this VMDK is a delta of a parent disk (parentCID is set)', { structure: 'VMDK descriptor', offset: h.descriptorOffset * SECTOR });
    }
    const grains = Math.ceil(h.capacity / h.grainSize);
    const gdEntries = Math.ceil(grains / h.numGTEsPerGT);
    const gdBytes = gdEntries * 4;
    const gdAt = h.gdOffset * SECTOR;
    const where = { structure: 'VMDK grain directory', offset: gdAt };
    if (gdBytes > MAX_GD_BYTES) throw new ImageError('E_TOO_LARGE', `grain directory of ${gdBytes} bytes`, where);
    let gd = new Uint32Array(0);
    if (gdEntries > 0) {
      if (gdAt === 0) throw new ImageError('E_LOOP', 'the grain directory overlaps the header', where);
      if (gdAt + gdBytes > fileSize) throw new ImageError('E_OUT_OF_RANGE', `grain directory (${gdBytes} bytes) lies past the end of the ${fileSize}-byte file`, where);
      const raw = await readAt(container, gdAt, gdBytes);
      gd = new Uint32Array(gdEntries);
      const dv = view(raw);
      const gtBytes = h.numGTEsPerGT * 4;
      for (let i = 0; i < gdEntries; i++) {
        const sector = dv.getUint32(i * 4, true);
        if (sector === 0) continue;
        const at = sector * SECTOR;
        const entry = { structure: 'VMDK grain directory entry', offset: gdAt + i * 4 };
        if (at + gtBytes > fileSize) throw new ImageError('E_OUT_OF_RANGE', `grain table ${i} at ${at} lies past the end of the ${fileSize}-byte file`, entry);
        if (at < gdAt + gdBytes && at + gtBytes > gdAt) throw new ImageError('E_LOOP', `grain table ${i} overlaps the grain directory`, entry);
        gd[i] = sector;
      }
    }
    return new SparseExtentDevice(container, h, descriptor, gd, { offset: gdAt, length: gdBytes, what: 'grain directory' });
  }

  private gt(i: number): Promise<Uint32Array> | undefined {
    const sector = this.gd[i] ?? 0;
    if (sector === 0) return undefined;
    return this.gtCache.get(i, async () => {
      const at = sector * SECTOR;
      const raw = await readAt(this.container, at, this.gtBytes);
      const dv = view(raw);
      const out = new Uint32Array(this.header.numGTEsPerGT);
      const metadata: Span[] = [{ offset: 0, length: SECTOR, what: 'header' }, this.gdSpan, { offset: at, length: this.gtBytes, what: 'grain table that maps it' }];
      const fileSize = this.container.size;
      for (let k = 0; k < out.length; k++) {
        const v = dv.getUint32(k * 4, true);
        out[k] = v;
        if (v === GTE_UNALLOCATED || v === GTE_ZERO) continue;
        const where = { structure: 'VMDK grain table entry', offset: at + k * 4 };
        const g = v * SECTOR;
        if (g >= fileSize) throw new ImageError('E_OUT_OF_RANGE', `grain at ${g} lies past the end of the ${fileSize}-byte file`, where);
        for (const m of metadata) {
          if (g < m.offset + m.length && g + (this.compressed ? GRAIN_MARKER_BYTES : this.grainBytes) > m.offset) {
            throw new ImageError('E_LOOP', `grain at ${g} overlaps the ${m.what}`, where);
          }
        }
      }
      return out;
    });
  }

  /** The GTE of grain `g` (0 unallocated, 1 zero, else the grain's sector). */
  private async gte(g: number): Promise<number> {
    const table = this.gt(Math.floor(g / this.header.numGTEsPerGT));
    if (!table) return GTE_UNALLOCATED;
    return (await table)[g % this.header.numGTEsPerGT]!;
  }

  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    await readUnits(buffer, position, {
      container: this.container,
      unitBytes: this.grainBytes,
      maxRun: MAX_RUN,
      place: async (g): Promise<UnitPlace> => {
        const v = await this.gte(g);
        if (v === GTE_UNALLOCATED || v === GTE_ZERO) return { kind: 'zero' };
        return this.compressed ? { kind: 'compressed', host: v * SECTOR, length: 0 } : { kind: 'raw', host: v * SECTOR };
      },
      recent: (host) => (this.lastGrain?.sector === host / SECTOR ? this.lastGrain.data : undefined),
      spans: (parts) => this.grainSpans(parts),
      readSpan: (buf, span) => this.readGrains(buf, span),
    });
  }

  /** Compressed grains close together on the host (stream order), to be read at once. */
  private *grainSpans(parts: readonly CompressedPart[]): Iterable<CompressedPart[]> {
    let span: CompressedPart[] = [];
    for (const p of parts) {
      const first = span[0]?.host;
      if (first !== undefined && (p.host < first || p.host - first + this.grainBytes * 2 > MAX_RUN)) {
        yield span;
        span = [];
      }
      span.push(p);
    }
    if (span.length > 0) yield span;
  }

  /** Read a span of compressed grains (markers included) once, then inflate each. */
  private async readGrains(buffer: Uint8Array, parts: CompressedPart[]): Promise<void> {
    let bytes: Uint8Array | undefined;
    let first = 0;
    if (this.header.flags & FLAG_MARKERS) {
      first = parts[0]!.host;
      // The last grain's size is in its marker: read as far as a grain can reach.
      const last = Math.max(...parts.map((p) => p.host)) + GRAIN_MARKER_BYTES + this.grainBytes + 4096;
      bytes = await readAt(this.container, first, Math.max(0, Math.min(this.container.size, last) - first));
    }
    const inflates = parts.map(async (p) => {
      const out = await this.inflateGrain(p.host / SECTOR, p.unit, bytes, first);
      buffer.set(out.subarray(p.within, p.within + p.n), p.from);
    });
    await settleAll(inflates);
  }

  /** Inflate the grain at `sector`, taking its bytes from `span` (read from `spanAt`) when they lie inside it. */
  private async inflateGrain(sector: number, g: number, span?: Uint8Array, spanAt = 0): Promise<Uint8Array> {
    if (this.lastGrain?.sector === sector) return this.lastGrain.data;
    const at = sector * SECTOR;
    const where = { structure: 'VMDK compressed grain', offset: at };
    const fileSize = this.container.size;
    const limit = this.grainBytes * 2 + 4096;
    const slice = async (offset: number, length: number): Promise<Uint8Array> => {
      if (span && offset >= spanAt && offset + length <= spanAt + span.length) return span.subarray(offset - spanAt, offset - spanAt + length);
      return readAt(this.container, offset, length);
    };
    let input: Uint8Array;
    if (this.header.flags & FLAG_MARKERS) {
      if (at + GRAIN_MARKER_BYTES > fileSize) throw new ImageError('E_TRUNCATED', 'grain marker is cut off by the end of the file', where);
      const marker = parseGrainMarker(await slice(at, GRAIN_MARKER_BYTES));
      if (marker.size === 0 || marker.size > limit) throw new ImageError('E_CORRUPT', `grain marker gives a compressed size of ${marker.size} bytes`, where);
      if (at + GRAIN_MARKER_BYTES + marker.size > fileSize) throw new ImageError('E_TRUNCATED', 'compressed grain is cut off by the end of the file', where);
      input = await slice(at + GRAIN_MARKER_BYTES, marker.size);
    } else {
      input = await slice(at, Math.min(limit, fileSize - at));
    }
    // Every writer seen wraps grains in zlib (RFC 1950); the spec's text says raw deflate.
    const zlibWrapped = input.length >= 2 && (input[0]! & 0x0f) === 8 && ((input[0]! << 8) | input[1]!) % 31 === 0;
    let out: Uint8Array = await inflateUnit(input, { unitBytes: this.grainBytes, zlib: zlibWrapped, what: 'compressed grain', where, run: this.inflating });
    // The last grain may stop at the end of the disk; any other must be whole.
    const needed = Math.min(this.grainBytes, this.size - g * this.grainBytes);
    if (out.length < needed) throw new ImageError('E_CORRUPT', `compressed grain inflates to ${out.length} bytes, expected ${needed}`, where);
    if (out.length < this.grainBytes) {
      const full = new Uint8Array(this.grainBytes);
      full.set(out);
      out = full;
    }
    this.lastGrain = { sector, data: out };
    return out;
  }

  protected override async *_extents(range: Range): AsyncIterable<Extent> {
    const gb = this.grainBytes;
    const per = this.header.numGTEsPerGT;
    const end = range.offset + range.length;
    const runs = new ExtentRun();
    for (let at = range.offset; at < end; ) {
      const t = Math.floor(at / (gb * per));
      const stop = Math.min(end, (t + 1) * gb * per);
      const table = this.gt(t);
      if (!table) {
        const out = runs.add(at, stop - at, 'unallocated');
        if (out) yield out;
        at = stop;
        continue;
      }
      const entries = await table;
      while (at < stop) {
        const g = Math.floor(at / gb);
        const next = Math.min(stop, (g + 1) * gb);
        const v = entries[g % per]!;
        const out = runs.add(at, next - at, v === GTE_UNALLOCATED ? 'unallocated' : v === GTE_ZERO ? 'zero' : 'data');
        if (out) yield out;
        at = next;
      }
    }
    const last = runs.finish();
    if (last) yield last;
  }
}

async function readEmbeddedDescriptor(container: BlockDevice, h: SparseExtentHeader): Promise<Descriptor | undefined> {
  if (h.descriptorOffset === 0 || h.descriptorSize === 0) return undefined;
  const at = h.descriptorOffset * SECTOR;
  const length = h.descriptorSize * SECTOR;
  const where = { structure: 'VMDK descriptor', offset: at };
  if (length > MAX_DESCRIPTOR_BYTES) throw new ImageError('E_TOO_LARGE', `embedded descriptor of ${h.descriptorSize} sectors`, where);
  if (at + length > container.size) throw new ImageError('E_OUT_OF_RANGE', 'embedded descriptor lies past the end of the file', where);
  const bytes = await readAt(container, at, length);
  // Extents of a split disk reserve the area but leave it empty; their descriptor is elsewhere.
  if (bytes[0] === 0) return undefined;
  return parseDescriptor(bytes, at);
}
