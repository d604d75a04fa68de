import type { BlockDevice, Range } from './device.js';
import { mergeExtents } from './extents.js';
import { readAhead } from './readahead.js';

/** A run of consecutive cluster (grain, block) indexes. */
export interface ClusterRun {
  first: number;
  count: number;
}

/** The source's 'data' extents, merged; 'zero' and 'unallocated' ranges are never read. */
export async function dataRanges(disk: BlockDevice, signal?: AbortSignal): Promise<Range[]> {
  const out: Range[] = [];
  for await (const e of mergeExtents(disk.extents())) {
    signal?.throwIfAborted();
    if (e.kind === 'data') out.push({ offset: e.offset, length: e.length });
  }
  return out;
}

/** The clusters of `clusterSize` bytes that hold any byte of `ranges`, as merged runs. */
export function clusterRuns(ranges: readonly Range[], clusterSize: number): ClusterRun[] {
  const runs: ClusterRun[] = [];
  for (const r of ranges) {
    const first = Math.floor(r.offset / clusterSize);
    const last = Math.floor((r.offset + r.length - 1) / clusterSize);
    const prev = runs[runs.length - 1];
    if (prev && prev.first + prev.count >= first) prev.count = Math.max(prev.count, last - prev.first + 1);
    else runs.push({ first, count: last - first + 1 });
  }
  return runs;
}

export function runTotal(runs: readonly ClusterRun[]): number {
  let n = 0;
  for (const r of runs) n += r.count;
  return n;
}

/** Consecutive clusters `first` .. `first + count - 1`, `data` holding all of them. */
export interface ClusterWindow {
  readonly first: number;
  readonly count: number;
  readonly data: Uint8Array;
}

export interface ClusterWindowOptions {
  /** Bytes per window, rounded down to whole clusters (at least one). Default 4 MiB. */
  chunkSize?: number | undefined;
  /** Windows read ahead. Default 2. */
  depth?: number;
  signal?: AbortSignal | undefined;
  onRead?: (bytes: number) => void;
}

/**
 * The clusters that hold any byte of `ranges` (sorted, non-overlapping), in ascending order,
 * as windows of whole clusters (zero-padded past the disk's end and wherever the source has
 * no data). Only the data ranges are read, ahead of the consumer. A window's buffer is
 * reused once the next one is asked for.
 */
export async function* clusterWindows(
  disk: BlockDevice,
  ranges: readonly Range[],
  clusterSize: number,
  options: ClusterWindowOptions = {},
): AsyncIterable<ClusterWindow> {
  const perWindow = Math.max(1, Math.floor((options.chunkSize ?? 4 * 1024 * 1024) / clusterSize));
  const plans = unitWindows(ranges, clusterSize, perWindow * clusterSize);
  const depth = options.depth ?? 2;
  for await (const w of readAhead(disk, plans, { maxLength: perWindow * clusterSize, depth, signal: options.signal })) {
    options.onRead?.(w.bytesRead);
    yield { first: w.offset / clusterSize, count: w.length / clusterSize, data: w.data };
  }
}

/**
 * Windows of whole units, at most `windowSize` bytes each, over the units that hold any byte
 * of `ranges` (sorted, non-overlapping), each with the parts of `ranges` inside it. A gap of
 * whole units starts a new window.
 */
export function* unitWindows(ranges: readonly Range[], unit: number, windowSize: number): Iterable<{ offset: number; length: number; pieces: Range[] }> {
  let open: { offset: number; length: number; pieces: Range[] } | undefined;
  for (const r of ranges) {
    let at = r.offset;
    const end = r.offset + r.length;
    while (at < end) {
      const unitStart = Math.floor(at / unit) * unit;
      if (open && unitStart >= open.offset + open.length) {
        // A gap of whole units, or a full window: the next piece starts a new window.
        if (unitStart > open.offset + open.length || open.length >= windowSize) {
          yield open;
          open = undefined;
        }
      }
      if (!open) open = { offset: unitStart, length: 0, pieces: [] };
      const windowEnd = open.offset + windowSize;
      const stop = Math.min(end, windowEnd);
      open.pieces.push({ offset: at, length: stop - at });
      open.length = Math.max(open.length, Math.ceil(stop / unit) * unit - open.offset);
      at = stop;
      if (at >= windowEnd) {
        yield open;
        open = undefined;
      }
    }
  }
  if (open) yield open;
}
