// Same as @amitrans/qcow2's cluster reader: duplicated so the two format packages stay independent.
import { mergeExtents, type BlockDevice, type Range } from '@amitrans/block';

/** A run of consecutive grain (cluster) indexes. */
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

/**
 * The clusters of `runs` in ascending order, each a full cluster (zero-padded past the
 * disk's end and wherever the source has no data). Reads only the data ranges, in chunks of
 * about `chunkSize` bytes. The yielded buffer is reused: consume it before the next step.
 */
export async function* readClusters(
  disk: BlockDevice,
  ranges: readonly Range[],
  runs: readonly ClusterRun[],
  clusterSize: number,
  options: { chunkSize?: number; signal?: AbortSignal; onRead?: (bytes: number) => void } = {},
): AsyncIterable<{ index: number; data: Uint8Array }> {
  const perWindow = Math.max(1, Math.floor((options.chunkSize ?? 2 * 1024 * 1024) / clusterSize));
  const window = new Uint8Array(perWindow * clusterSize);
  let j = 0;
  for (const run of runs) {
    for (let w = run.first; w < run.first + run.count; w += perWindow) {
      options.signal?.throwIfAborted();
      const count = Math.min(perWindow, run.first + run.count - w);
      const start = w * clusterSize;
      const stop = Math.min(disk.size, (w + count) * clusterSize);
      window.fill(0, 0, count * clusterSize);
      while (j < ranges.length && ranges[j]!.offset + ranges[j]!.length <= start) j++;
      for (let k = j; k < ranges.length && ranges[k]!.offset < stop; k++) {
        const s = Math.max(start, ranges[k]!.offset);
        const t = Math.min(stop, ranges[k]!.offset + ranges[k]!.length);
        if (t <= s) continue;
        await disk.read(window.subarray(s - start, t - start), s);
        options.onRead?.(t - s);
      }
      for (let i = 0; i < count; i++) yield { index: w + i, data: window.subarray(i * clusterSize, (i + 1) * clusterSize) };
    }
  }
}
