import {
  appendUnits,
  clusterRuns,
  clusterWindows,
  CoalescingSink,
  CountingSink,
  dataRanges,
  deflateUnits,
  ImageError,
  onOffOption,
  readOptions,
  runTotal,
  type BlockDevice,
  type ClusterRun,
  type ClusterWindow,
  type OptionTable,
  type Range,
  type Sink,
  type WriteOptions,
  type WriteResult,
} from '@amitrans/block';
import { V2_HEADER_LENGTH, V3_HEADER_LENGTH, serializeExtensionEnd, serializeHeader, type Qcow2Header } from './header.js';
import { REFCOUNT_ORDER, metadataRefcount, planLayout, serializeRefcountBlock, serializeRefcountTable, type Layout } from './layout.js';
import { COPIED, compressedEntry, standardEntry } from './tables.js';
import { checkQcow2Size } from './limits.js';

export interface Qcow2WriteSettings {
  version: 2 | 3;
  clusterBits: number;
  compress: boolean;
}

/** cluster_size as its log2: a power of two from 4 KiB to 2 MiB. */
function readClusterBits(text: string): number | undefined {
  const bits = Math.log2(Number(text));
  return /^\d+$/.test(text) && Number.isInteger(bits) && bits >= 12 && bits <= 21 ? bits : undefined;
}

const VERSIONS: Readonly<Record<string, 2 | 3>> = { '1.1': 3, v3: 3, '0.10': 2, v2: 2 };

/** The -o keys of a qcow2 output: the driver's table, read by the resolver and by writeSettings. */
export const QCOW2_WRITE_OPTIONS = {
  compress: onOffOption('on: deflate every cluster (4 KiB window, as qemu-img -c); needs a seekable output', false),
  compat: { help: '1.1 (default, qcow2 v3) or 0.10 (qcow2 v2)', parse: (text: string) => (Object.hasOwn(VERSIONS, text) ? VERSIONS[text] : undefined), expected: '1.1 or 0.10', default: 3 },
  cluster_size: { help: 'cluster size in bytes, a power of two from 4096 to 2097152 (default 65536)', parse: readClusterBits, expected: 'a power of two from 4096 to 2097152', default: 16 },
} satisfies OptionTable;

/** Parse qemu-img style -o options: compress=on, compat=0.10|1.1, cluster_size=65536. */
export function writeSettings(options: Readonly<Record<string, string>> = {}): Qcow2WriteSettings {
  const o = readOptions('qcow2', QCOW2_WRITE_OPTIONS, options);
  return { version: o.compat, clusterBits: o.cluster_size, compress: o.compress };
}

function header(layout: Layout, version: 2 | 3): Uint8Array {
  const h: Qcow2Header = {
    version,
    backingFileOffset: 0,
    backingFileSize: 0,
    clusterBits: layout.clusterBits,
    size: layout.size,
    cryptMethod: 0,
    l1Size: layout.l1Size,
    l1TableOffset: layout.l1Offset,
    refcountTableOffset: layout.refcountTableOffset,
    refcountTableClusters: layout.refcountTableClusters,
    nbSnapshots: 0,
    snapshotsOffset: 0,
    incompatibleFeatures: 0n,
    compatibleFeatures: 0n,
    autoclearFeatures: 0n,
    refcountOrder: REFCOUNT_ORDER,
    headerLength: version === 3 ? V3_HEADER_LENGTH : V2_HEADER_LENGTH,
    compressionType: 0,
  };
  const fields = serializeHeader(h);
  const out = new Uint8Array(fields.length + 8);
  out.set(fields);
  out.set(serializeExtensionEnd(), fields.length);
  return out;
}

/**
 * Write `disk` as a qcow2 image. Pass 1 plans from the source's extents (which clusters may
 * hold data); pass 2 reads those clusters once, in order. On a seekable sink all-zero
 * clusters are dropped and compressed clusters packed, and the tables are patched in at the
 * end; on a stream the tables go first and every planned cluster is stored.
 */
export async function writeQcow2(disk: BlockDevice, sink: Sink, options: WriteOptions = {}): Promise<WriteResult> {
  const settings = writeSettings(options.options);
  if (sink.position !== 0) throw new ImageError('E_UNSUPPORTED', 'a qcow2 image must start at the beginning of its output');
  if (!sink.seekable && settings.compress) {
    throw new ImageError('E_UNSUPPORTED', 'compressed qcow2 needs a seekable output (a file), not a stream');
  }
  const size = Math.ceil(disk.size / 512) * 512;
  checkQcow2Size(size, settings.clusterBits);
  const ranges = await dataRanges(disk, options.signal);
  const clusterSize = 2 ** settings.clusterBits;
  const runs = clusterRuns(ranges, clusterSize);
  const candidates = runTotal(runs);
  // Packed compressed data may end one cluster further than the clusters it came from.
  const layout = planLayout(size, settings.clusterBits, runs, candidates + (settings.compress ? 1 : 0));
  // Compressed clusters are small appends: gather them into large writes.
  const coalescing = settings.compress ? new CoalescingSink(sink) : undefined;
  const out = new CountingSink(coalescing ?? sink);
  const src: Source = { disk, ranges, signal: options.signal, bytesRead: 0 };
  const progress = (index: number): void => options.progress?.(Math.min(disk.size, (index + 1) * clusterSize), disk.size);
  if (sink.seekable) await writePatched(layout, settings, out, src, progress);
  else await writeStreamed(layout, settings, out, runs, windowsOf(src, clusterSize), progress);
  await coalescing?.flush();
  options.progress?.(disk.size, disk.size);
  return { bytesRead: src.bytesRead, bytesWritten: out.written };
}

/** What is read: the data ranges of the disk, counting the bytes read. */
interface Source {
  readonly disk: BlockDevice;
  readonly ranges: readonly Range[];
  readonly signal: AbortSignal | undefined;
  bytesRead: number;
}

function windowsOf(src: Source, clusterSize: number): AsyncIterable<ClusterWindow> {
  return clusterWindows(src.disk, src.ranges, clusterSize, { signal: src.signal, onRead: (n) => (src.bytesRead += n) });
}

/** One-pass layout: every planned cluster is stored at a position known before the first byte. */
async function writeStreamed(
  layout: Layout,
  settings: Qcow2WriteSettings,
  out: CountingSink,
  runs: readonly ClusterRun[],
  windows: AsyncIterable<ClusterWindow>,
  progress: (index: number) => void,
): Promise<void> {
  const cs = layout.clusterSize;
  const l2Entries = cs / 8;
  const dataFirst = layout.dataOffset / cs;
  const usedClusters = dataFirst + layout.dataClusters;
  const cluster0 = new Uint8Array(cs);
  cluster0.set(header(layout, settings.version));
  await out.write(cluster0);
  await out.write(serializeRefcountTable(layout));
  for (let i = 0; i < layout.refcountBlocks; i++) await out.write(serializeRefcountBlock(layout, i, (c) => (c < usedClusters ? 1 : 0)));
  const l1 = new Uint8Array(layout.l1Clusters * cs);
  const l1v = new DataView(l1.buffer);
  layout.l2Indexes.forEach((idx, slot) => l1v.setBigUint64(idx * 8, BigInt(layout.l2Offset + slot * cs) | COPIED));
  await out.write(l1);
  // L2 tables: the k-th planned cluster lives at dataOffset + k clusters.
  let k = 0;
  let r = 0;
  for (const idx of layout.l2Indexes) {
    const l2 = new Uint8Array(cs);
    const dv = new DataView(l2.buffer);
    const lo = idx * l2Entries;
    const hi = lo + l2Entries;
    while (r < runs.length && runs[r]!.first < hi) {
      const run = runs[r]!;
      const s = Math.max(run.first, lo);
      const t = Math.min(run.first + run.count, hi);
      for (let c = s; c < t; c++) dv.setBigUint64((c - lo) * 8, standardEntry(layout.dataOffset + k++ * cs));
      if (run.first + run.count > hi) break;
      r++;
    }
    await out.write(l2);
  }
  for await (const w of windows) {
    await out.write(w.data);
    progress(w.first + w.count - 1);
  }
}

/**
 * The tables of a seekable qcow2 as its data is appended: L2 tables filled one at a time
 * and patched in when full, refcounts of the data area, then L1, refcounts and header.
 */
class PatchedTables {
  readonly #cs: number;
  readonly #l1: Uint8Array;
  readonly #slotOf = new Map<number, number>();
  readonly #usedSlots = new Set<number>();
  #table: { idx: number; buf: Uint8Array; dv: DataView; used: boolean } | undefined;
  /** Refcounts of the data area, one per host cluster from dataOffset. */
  #refs = new Uint16Array(1024);
  readonly #dataFirst: number;

  constructor(private readonly layout: Layout, private readonly out: CountingSink) {
    this.#cs = layout.clusterSize;
    this.#l1 = new Uint8Array(layout.l1Clusters * this.#cs);
    layout.l2Indexes.forEach((idx, slot) => this.#slotOf.set(idx, slot));
    this.#dataFirst = layout.dataOffset / this.#cs;
  }

  async entry(index: number, value: bigint): Promise<void> {
    const l2Entries = this.#cs / 8;
    const idx = Math.floor(index / l2Entries);
    if (this.#table?.idx !== idx) {
      await this.flushTable();
      const buf = new Uint8Array(this.#cs);
      this.#table = { idx, buf, dv: new DataView(buf.buffer), used: false };
    }
    this.#table.dv.setBigUint64((index % l2Entries) * 8, value);
    this.#table.used = true;
  }

  async flushTable(): Promise<void> {
    const table = this.#table;
    if (table?.used) {
      const slot = this.#slotOf.get(table.idx)!;
      const at = this.layout.l2Offset + slot * this.#cs;
      await this.out.pwrite(table.buf, at);
      new DataView(this.#l1.buffer).setBigUint64(table.idx * 8, BigInt(at) | COPIED);
      this.#usedSlots.add(slot);
    }
    this.#table = undefined;
  }

  addRefs(from: number, length: number): void {
    const a = Math.floor(from / this.#cs) - this.#dataFirst;
    const b = Math.floor((from + length - 1) / this.#cs) - this.#dataFirst;
    if (b >= this.#refs.length) {
      const grown = new Uint16Array(Math.max(b + 1, this.#refs.length * 2));
      grown.set(this.#refs);
      this.#refs = grown;
    }
    for (let c = a; c <= b; c++) this.#refs[c]!++;
  }

  /** Consecutive clusters from `index` are stored uncompressed from byte `at`: refcounts and L2 entries. */
  async mapRaw(index: number, at: number, length: number): Promise<void> {
    for (let k = 0; k * this.#cs < length; k++) {
      this.addRefs(at + k * this.#cs, this.#cs);
      await this.entry(index + k, standardEntry(at + k * this.#cs));
    }
  }

  /** Patch in the last L2 table, L1, refcounts and header once the data ends at `dataEnd`. */
  async finish(dataEnd: number, version: 2 | 3): Promise<void> {
    const { layout, out } = this;
    await this.flushTable();
    const dataClusters = (dataEnd - layout.dataOffset) / this.#cs;
    if (dataClusters > layout.dataClusters) throw new Error(`qcow2 writer used ${dataClusters} data clusters, planned ${layout.dataClusters}`);
    await out.pwrite(this.#l1, layout.l1Offset);
    await out.pwrite(serializeRefcountTable(layout), layout.refcountTableOffset);
    const first = this.#dataFirst;
    const refcount = (c: number): number => {
      if (c < first) return metadataRefcount(layout, c, (slot) => this.#usedSlots.has(slot));
      return c - first < dataClusters ? this.#refs[c - first]! : 0;
    };
    for (let i = 0; i < layout.refcountBlocks; i++) {
      await out.pwrite(serializeRefcountBlock(layout, i, refcount), layout.refcountBlockOffset + i * this.#cs);
    }
    await out.pwrite(header(layout, version), 0);
  }
}

/** Seekable layout: data appended (zeros dropped, compressed packed), tables patched in last. */
async function writePatched(
  layout: Layout,
  settings: Qcow2WriteSettings,
  out: CountingSink,
  src: Source,
  progress: (index: number) => void,
): Promise<void> {
  const cs = layout.clusterSize;
  const tables = new PatchedTables(layout, out);
  await out.skip(layout.dataOffset);
  if (settings.compress) {
    await deflateUnits(windowsOf(src, cs), cs, 'raw4k', async (index, raw, packed) => {
      if (packed.length < cs) {
        const at = out.position;
        await out.write(packed);
        // The descriptor covers whole 512-byte sectors; so does the refcount.
        tables.addRefs(at, Math.ceil((at + packed.length) / 512) * 512 - at);
        await tables.entry(index, compressedEntry(at, packed.length, layout.clusterBits));
      } else {
        // Stored as is, on the next cluster boundary after the packed data before it.
        const misaligned = out.position % cs;
        if (misaligned !== 0) await out.skip(cs - misaligned);
        const at = out.position;
        await out.write(raw);
        await tables.mapRaw(index, at, raw.length);
      }
      progress(index);
    });
  } else {
    // Only whole clusters are appended here, so the position stays cluster-aligned.
    const read = await appendUnits(src.disk, src.ranges, out, {
      unit: cs,
      signal: src.signal,
      place: (first, count, at) => tables.mapRaw(first, at, count * cs),
      progress: (done) => progress(done / cs - 1),
    });
    src.bytesRead += read;
  }
  // End on a cluster boundary so the last (compressed) cluster's sectors are all in the file.
  const tail = out.position % cs;
  if (tail !== 0) await out.skip(cs - tail);
  await tables.finish(out.position, settings.version);
}
