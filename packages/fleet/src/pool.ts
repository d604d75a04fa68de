import { availableParallelism, freemem } from 'node:os';
import { processImage, type PipelineOptions } from './pipeline.js';
import { RESULTS, type ImageResult } from './record.js';
import type { FleetStore } from './store.js';
import type { FleetItem } from './worklist.js';
import { newTimes, roundTimes, timed, type FleetTimes } from './times.js';

/**
 * About what one image in flight needs: the COW overlay, ext2fs' cache, read-ahead and
 * write-behind buffers (measured 150-250 MiB on the fixture images), with a margin.
 */
const MEMORY_PER_IMAGE = 512 * 1024 * 1024;

/** Images at once on this machine: one per core, fewer when memory is short, at least one. */
export function defaultConcurrency(): number {
  return Math.max(1, Math.min(availableParallelism(), Math.floor(freemem() / MEMORY_PER_IMAGE)));
}

export interface RunOptions extends Omit<PipelineOptions, 'attempt' | 'throwTransient'> {
  concurrency?: number;
  /** Run images whose last record says failed again (done ones are always skipped). */
  retryFailed?: boolean;
  /** Called when an image starts (running) and when its record is written. */
  onImage?: (event: { id: string; phase: 'start' | 'end'; result?: ImageResult }) => void;
}

export interface RunSummary {
  total: number;
  /** Images with a record from an earlier run, left alone. */
  skipped: number;
  /** Images processed by this run. */
  processed: number;
  done: number;
  failed: number;
  /** Images not started or interrupted because the run was stopped. */
  stopped: number;
  seconds: number;
  /** The fleet's own time in this run (journal, store; the caller adds its report and start-up) and its lanes' idle tail. */
  times: FleetTimes;
}

/** A run and the result records of its work list afterwards (the earlier ones and this run's), for the report. */
export interface RunOutcome {
  summary: RunSummary;
  results: ImageResult[];
}

/**
 * The embedded fleet: a pool of `concurrency` images at a time on this machine. The result
 * records are the journal: an image with a record is skipped (a failed one too, unless
 * retryFailed), so a rerun after a crash or Ctrl-C does only what is left.
 */
export async function runFleet(items: readonly FleetItem[], o: RunOptions): Promise<RunOutcome> {
  const t0 = performance.now();
  const times = newTimes();
  const previous = await timed(times, 'journal', () => loadResults(o.store, items.map((i) => i.id)));
  const todo = items.filter((i) => {
    const p = previous.get(i.id);
    return p === undefined || (p.status === 'failed' && o.retryFailed === true);
  });
  const summary: RunSummary = { total: items.length, skipped: items.length - todo.length, processed: 0, done: 0, failed: 0, stopped: 0, seconds: 0, times };
  // The records of the list as they stand after the run, kept as they are written: the report needs no second read.
  const results = new Map(previous);
  let next = 0;
  const ends: number[] = [];
  const lane = async (): Promise<void> => {
    while (next < todo.length && !o.signal?.aborted) {
      const item = todo[next++]!;
      o.onImage?.({ id: item.id, phase: 'start' });
      try {
        const result = await processImage(item, { ...o, times, attempt: (previous.get(item.id)?.attempt ?? 0) + 1 });
        results.set(item.id, result);
        summary.processed++;
        summary[result.status === 'done' ? 'done' : 'failed']++;
        o.onImage?.({ id: item.id, phase: 'end', result });
      } catch (err) {
        // Only an interruption gets here (every other error ends in the record): nothing is
        // recorded and nothing half-delivered is left, so the next run does the image again.
        if (!o.signal?.aborted) throw err;
      }
    }
    ends.push(performance.now());
  };
  const lanes = Math.max(1, Math.min(o.concurrency ?? defaultConcurrency(), todo.length));
  await Promise.all(Array.from({ length: lanes }, lane));
  // The tail: each lane that ran out of images waits for the last one to finish.
  const last = Math.max(...ends, t0);
  times.idle = ends.reduce((s, e) => s + (last - e) / 1000, 0);
  summary.stopped = todo.length - summary.processed;
  summary.seconds = (performance.now() - t0) / 1000;
  summary.times = roundTimes(times);
  return { summary, results: [...results.values()] };
}

/** The result records in the store, by image id (only those of `ids` when given). */
export async function loadResults(store: FleetStore, ids?: readonly string[]): Promise<Map<string, ImageResult>> {
  const keys = await store.list(RESULTS);
  const wanted = ids ? new Set(ids.map((id) => `${RESULTS}${id}.json`)) : undefined;
  const chosen = keys.filter((k) => k.endsWith('.json') && (!wanted || wanted.has(k)));
  const out = new Map<string, ImageResult>();
  await mapLimit(chosen, 16, async (key) => {
    const text = await store.getText(key);
    if (text === undefined) return;
    // A record that does not parse (a disk filled up, a hand edit) counts as absent: redone.
    let r: ImageResult;
    try {
      r = JSON.parse(text) as ImageResult;
    } catch {
      return;
    }
    if (typeof r?.id === 'string') out.set(r.id, r);
  });
  return out;
}

async function mapLimit<T>(list: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < list.length) await fn(list[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, list.length) }, lane));
}
