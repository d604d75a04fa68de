import {
  clusterRuns,
  clusterWindows,
  CoalescingSink,
  CountingSink,
  dataRanges,
  DeflatePool,
  ImageError,
  isZeroAt,
  OrderedQueue,
  runTotal,
  WriteBehind,
  type BlockDevice,
  type ClusterRun,
  type ClusterWindow,
  type Sink,
  type WriteOptions,
  type WriteResult,
  zeroRuns,
} from '@amitrans/block';
import { V2_HEADER_LENGTH, V3_HEADER_LENGTH, serializeExtensionEnd, serializeHeader, type Qcow2Header } from './header.js';
import { REFCOUNT_ORDER, metadataRefcount, planLayout, serializeRefcountBlock, serializeRefcountTable, type Layout } from './layout.js';
import { COPIED, compressedEntry, standardEntry } from './tables.js';

export interface Qcow2WriteSettings {
  version: 2 | 3;
  clusterBits: number;
  compress: boolean;
}

/** Parse qemu-img style -o options: compress=on, compat=0.10|1.1, cluster_size=65536. */
export function writeSettings(options: Readonly<Record<string, string>> = {}): Qcow2WriteSettings {
  const unknown = Object.keys(options).filter((k) => !['compress', 'compat', 'cluster_size'].includes(k));
  if (unknown.length > 0) throw new ImageError('E_UNSUPPORTED', `unknown qcow2 option(s): ${unknown.join(', ')}`);
  const compat = options.compat ?? '1.1';
  if (compat !== '1.1' && compat !== 'v3' && compat !== '0.10' && compat !== 'v2') {
    throw new ImageError('E_UNSUPPORTED', `qcow2 compat=${compat} (use 1.1 or 0.10)`);
  }
  const compress = options.compress ?? 'off';
  if (!['on', 'off', 'true', 'false', 'yes', 'no'].includes(compress)) throw new ImageError('E_UNSUPPORTED', `qcow2 compress=${compress} (use on or off)`);
  const clusterSize = Number(options.cluster_size ?? 65536);
  const clusterBits = Math.log2(clusterSize);
  if (!Number.isInteger(clusterBits) || clusterBits < 12 || clusterBits > 21) {
    throw new ImageError('E_UNSUPPORTED', `qcow2 cluster_size=${options.cluster_size} (a power of two from 4096 to 2097152)`);
  }
  return { version: compat === '0.10' || compat === 'v2' ? 2 : 3, clusterBits, compress: ['on', 'true', 'yes'].includes(compress) };
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
  const ranges = await dataRanges(disk, options.signal);
  const clusterSize = 2 ** settings.clusterBits;
  const runs = clusterRuns(ranges, clusterSize);
  const candidates = runTotal(runs);
  // Packed compressed data may end one cluster further than the clusters it came from.
  const layout = planLayout(size, settings.clusterBits, runs, candidates + (settings.compress ? 1 : 0));
  // Compressed clusters are small appends: gather them into large writes.
  const coalescing = settings.compress ? new CoalescingSink(sink) : undefined;
  const out = new CountingSink(coalescing ?? sink);
  let bytesRead = 0;
  const windows = clusterWindows(disk, ranges, clusterSize, {
    signal: options.signal,
    onRead: (n) => (bytesRead += n),
  });
  const progress = (index: number): void => options.progress?.(Math.min(disk.size, (index + 1) * clusterSize), disk.size);
  if (sink.seekable) await writePatched(layout, settings, out, windows, progress);
  else await writeStreamed(layout, settings, out, runs, windows, progress);
  await coalescing?.flush();
  options.progress?.(disk.size, disk.size);
  return { bytesRead, bytesWritten: out.written };
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

/** Seekable layout: data appended (zeros dropped, compressed packed), tables patched in last. */
async function writePatched(
  layout: Layout,
  settings: Qcow2WriteSettings,
  out: CountingSink,
  windows: AsyncIterable<ClusterWindow>,
  progress: (index: number) => void,
): Promise<void> {
  const cs = layout.clusterSize;
  const l2Entries = cs / 8;
  await out.skip(layout.dataOffset);
  const l1 = new Uint8Array(layout.l1Clusters * cs);
  const l1v = new DataView(l1.buffer);
  const slotOf = new Map<number, number>();
  layout.l2Indexes.forEach((idx, slot) => slotOf.set(idx, slot));
  const usedSlots = new Set<number>();
  let table: { idx: number; buf: Uint8Array; dv: DataView; used: boolean } | undefined;
  const flushTable = async (): Promise<void> => {
    if (table?.used) {
      const slot = slotOf.get(table.idx)!;
      const at = layout.l2Offset + slot * cs;
      await out.pwrite(table.buf, at);
      l1v.setBigUint64(table.idx * 8, BigInt(at) | COPIED);
      usedSlots.add(slot);
    }
    table = undefined;
  };
  const entry = async (index: number, value: bigint): Promise<void> => {
    const idx = Math.floor(index / l2Entries);
    if (table?.idx !== idx) {
      await flushTable();
      const buf = new Uint8Array(cs);
      table = { idx, buf, dv: new DataView(buf.buffer), used: false };
    }
    table.dv.setBigUint64((index % l2Entries) * 8, value);
    table.used = true;
  };

  // Refcounts of the data area, one per host cluster from dataOffset.
  let refs = new Uint16Array(1024);
  const dataFirst = layout.dataOffset / cs;
  const addRefs = (from: number, length: number): void => {
    const a = Math.floor(from / cs) - dataFirst;
    const b = Math.floor((from + length - 1) / cs) - dataFirst;
    if (b >= refs.length) {
      const grown = new Uint16Array(Math.max(b + 1, refs.length * 2));
      grown.set(refs);
      refs = grown;
    }
    for (let c = a; c <= b; c++) refs[c]!++;
  };
  /** Consecutive clusters from `index` are stored uncompressed from byte `at`: refcounts and L2 entries. */
  const mapRaw = async (index: number, at: number, length: number): Promise<void> => {
    for (let k = 0; k * cs < length; k++) {
      addRefs(at + k * cs, cs);
      await entry(index + k, standardEntry(at + k * cs));
    }
  };

  if (settings.compress) {
    const pool = new DeflatePool('raw4k');
    const queue = new OrderedQueue<{ index: number; raw: Uint8Array; packed: Uint8Array }>(pool.threads * 4, async ({ index, raw, packed }) => {
      if (packed.length < cs) {
        const at = out.position;
        await out.write(packed);
        // The descriptor covers whole 512-byte sectors; so does the refcount.
        const end = Math.ceil((at + packed.length) / 512) * 512;
        addRefs(at, end - at);
        await entry(index, compressedEntry(at, packed.length, layout.clusterBits));
      } else {
        // Stored as is, on the next cluster boundary after the packed data before it.
        const misaligned = out.position % cs;
        if (misaligned !== 0) await out.skip(cs - misaligned);
        const at = out.position;
        await out.write(raw);
        await mapRaw(index, at, raw.length);
      }
      progress(index);
    });
    try {
      for await (const w of windows) {
        for (let i = 0; i < w.count; i++) {
          if (isZeroAt(w.data, i * cs, (i + 1) * cs)) continue;
          // The window's buffer is reused: the deflate gets its own copy, kept for a raw fallback.
          const raw = w.data.slice(i * cs, (i + 1) * cs);
          const index = w.first + i;
          await queue.push(pool.compress(raw).then((packed) => ({ index, raw, packed })));
        }
      }
      await queue.drain();
    } finally {
      await queue.settle();
      await pool.close();
    }
  } else {
    // A window's data writes run while the next window is read and checked.
    await WriteBehind.over(out, async (behind) => {
      for await (const w of windows) {
        // Runs of non-zero clusters go out in one write each; all-zero clusters are dropped.
        // Only whole clusters are written here, so the position stays cluster-aligned.
        for (const r of zeroRuns(w.data, cs)) {
          if (r.zero) continue;
          const at = behind.position;
          behind.write(w.data.subarray(r.start, r.end));
          await mapRaw(w.first + r.start / cs, at, r.end - r.start);
        }
        await behind.endWindow();
        progress(w.first + w.count - 1);
      }
    });
  }
  await flushTable();
  // End on a cluster boundary so the last (compressed) cluster's sectors are all in the file.
  const tail = out.position % cs;
  if (tail !== 0) await out.skip(cs - tail);
  const dataClusters = (out.position - layout.dataOffset) / cs;
  if (dataClusters > layout.dataClusters) throw new Error(`qcow2 writer used ${dataClusters} data clusters, planned ${layout.dataClusters}`);

  await out.pwrite(l1, layout.l1Offset);
  await out.pwrite(serializeRefcountTable(layout), layout.refcountTableOffset);
  const refcount = (c: number): number => {
    if (c < dataFirst) return metadataRefcount(layout, c, (slot) => usedSlots.has(slot));
    return c - dataFirst < dataClusters ? refs[c - dataFirst]! : 0;
  };
  for (let i = 0; i < layout.refcountBlocks; i++) {
    await out.pwrite(serializeRefcountBlock(layout, i, refcount), layout.refcountBlockOffset + i * cs);
  }
  await out.pwrite(header(layout, settings.version), 0);
}
