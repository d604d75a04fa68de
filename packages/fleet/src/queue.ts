import type { Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Target } from '@amitrans/guest';
import type { RemoteOptions } from '@amitrans/remote';
import type { TranslateBundleOptions } from '@amitrans/diskimg';
import { FleetError } from './errors.js';
import { processImage, recordFailure, workerName, type PipelineOptions, type SharedTranslateOptions } from './pipeline.js';
import { onInterrupt } from '@amitrans/block';
import type { ImageResult } from './record.js';
import { openStore } from './store.js';
import type { FleetItem } from './worklist.js';
import { LaneClock, newTimes, roundTimes, sinceStart, timed, type FleetTimes } from './times.js';

/** What a job carries: the image and the run's settings, so a worker needs only the queue. */
export interface FleetJobData {
  item: FleetItem;
  /** The store (directory shared by the workers, or s3:// prefix). */
  out: string;
  formats?: Partial<Record<Target, string>>;
  translate?: SharedTranslateOptions;
  verify?: { timeout: number; expect?: string };
  /** Seconds one image may take before its try is abandoned (and retried). */
  timeout: number;
}

export interface QueueOptions {
  /** redis://host:port[/db] */
  url: string;
  /** The queue's name (default amitrans-fleet): several fleets can share one Redis. */
  name?: string;
}

export const DEFAULT_QUEUE = 'amitrans-fleet';

/**
 * BullMQ and ioredis are loaded by the queue commands only: the CLI is one bundle, and
 * every other command would otherwise pay for them at start-up.
 */
async function libs(): Promise<{ bullmq: typeof import('bullmq'); Redis: typeof import('ioredis').Redis }> {
  const [bullmq, ioredis] = await Promise.all([import('bullmq'), import('ioredis')]);
  return { bullmq, Redis: ioredis.Redis };
}

async function connect(o: QueueOptions): Promise<Redis> {
  if (!/^rediss?:\/\//.test(o.url)) throw new FleetError('E_USAGE', `--queue ${o.url}: expected redis://host:port`);
  const { Redis } = await libs();
  // Workers block on Redis: no per-request retry limit (BullMQ's production guide). The first
  // connection fails the command at once; a connection lost later is retried with backoff.
  const r = new Redis(o.url, { maxRetriesPerRequest: null, lazyConnect: true, retryStrategy: () => null });
  let last: Error | undefined;
  // ioredis prints errors nobody listens to; ours reach the user through the command's error.
  r.on('error', (err: Error) => (last = err));
  try {
    await r.connect();
  } catch (err) {
    r.disconnect();
    throw new FleetError('E_QUEUE', `${redactUrl(o.url)}: ${(last ?? (err as Error)).message}`, { cause: last ?? err });
  }
  r.options.retryStrategy = (n: number) => Math.min(n * 200, 5000);
  return r;
}

async function withQueue<T>(o: QueueOptions, fn: (q: Queue<FleetJobData>) => Promise<T>): Promise<T> {
  const { bullmq } = await libs();
  const connection = await connect(o);
  const q = new bullmq.Queue<FleetJobData>(o.name ?? DEFAULT_QUEUE, { connection });
  try {
    return await fn(q);
  } catch (err) {
    throw queueError(err, o);
  } finally {
    await q.close();
    connection.disconnect();
  }
}

function queueError(err: unknown, o: QueueOptions): Error {
  if (err instanceof FleetError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT') return new FleetError('E_QUEUE', `${redactUrl(o.url)}: ${(err as Error).message}`, { cause: err });
  return err as Error;
}

/** A Redis URL without its password. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

export interface SubmitOptions extends QueueOptions {
  /** Tries per image (a retry only follows a transient fault or a lost worker). */
  attempts?: number;
  /** The first retry's delay in ms; each later one doubles. */
  backoffMs?: number;
}

export interface SubmitSummary {
  /** Jobs added now. */
  added: number;
  /** Images already in the queue (waiting, running or finished): submitting twice adds nothing. */
  existing: number;
  /** Seconds in the queue (checking and adding jobs); the caller adds its start-up. */
  times: FleetTimes;
}

/** One job per image, its id the image id: a second submit of the same list adds nothing. */
export async function submitFleet(items: readonly FleetItem[], shared: Omit<FleetJobData, 'item'>, o: SubmitOptions): Promise<SubmitSummary> {
  const times = newTimes();
  return timed(times, 'queue', () => withQueue(o, async (q) => {
    const summary: SubmitSummary = { added: 0, existing: 0, times };
    for (let at = 0; at < items.length; at += 500) {
      const chunk = items.slice(at, at + 500);
      const present = await Promise.all(chunk.map((i) => q.getJob(i.id)));
      const fresh = chunk.filter((_, n) => present[n] === undefined);
      summary.existing += chunk.length - fresh.length;
      await q.addBulk(fresh.map((item) => ({
        name: 'image',
        data: { ...shared, item },
        opts: { jobId: item.id, attempts: o.attempts ?? 4, backoff: { type: 'exponential', delay: o.backoffMs ?? 5000 }, removeOnComplete: false, removeOnFail: false },
      })));
      summary.added += fresh.length;
    }
    return summary;
  })).then((summary) => ({ ...summary, times: roundTimes(times) }));
}

export interface WorkerOptions extends QueueOptions {
  /** Images at once in this worker. */
  concurrency?: number;
  remote?: RemoteOptions;
  /** This worker's EMI bundle credentials (keys never go through Redis): eucalyptus is then bundled, see formatFor. */
  bundle?: TranslateBundleOptions;
  /** How long a job's lock lasts without renewal: a dead worker's job is taken over after about this. */
  lockSeconds?: number;
  /** How often this worker looks for stalled jobs of dead workers. */
  stalledSeconds?: number;
  /** Stop when the queue has nothing left to do (tests and batch machines); else run until stopped. */
  untilEmpty?: boolean;
  signal?: AbortSignal;
  onJob?: (event: { id: string; phase: 'start' | 'end' | 'retry'; result?: ImageResult; error?: string }) => void;
}

export interface WorkerSummary {
  worker: string;
  processed: number;
  done: number;
  failed: number;
  /**
   * Where the worker's time went besides its images' stages: its start (to the first
   * fetch), the queue (its lanes fetching and completing jobs, and lock renewals, which run
   * beside the images), store checks, journal writes, and its lanes' idle time (nothing to
   * fetch, --until-empty's quiet wait, closing).
   */
  times: FleetTimes;
}

/**
 * A fleet worker: takes images off the queue and runs the pipeline. Deterministic outcomes
 * (won't boot, a corrupt image) complete the job with their record; transient faults throw,
 * so BullMQ retries with backoff; the last try records them as failed. A job whose worker
 * dies is stalled, and another worker takes it over; outputs already delivered are found
 * at their keys and not delivered again.
 */
export async function runWorker(o: WorkerOptions): Promise<WorkerSummary> {
  const name = workerName();
  const times = newTimes();
  const summary: WorkerSummary = { worker: name, processed: 0, done: 0, failed: 0, times };
  const running = new Set<AbortController>();
  const { bullmq } = await libs();
  const connection = await connect(o);
  const concurrency = o.concurrency ?? 1;
  const clock = new LaneClock(concurrency, times);
  const processor = async (job: Job<FleetJobData>): Promise<{ status: string }> => {
    clock.start();
    try {
      return await runJob(job, name, o, running, summary);
    } finally {
      clock.end();
    }
  };
  const worker = new bullmq.Worker<FleetJobData, { status: string }>(o.name ?? DEFAULT_QUEUE, processor, {
    connection,
    name,
    concurrency,
    lockDuration: (o.lockSeconds ?? 60) * 1000,
    stalledInterval: (o.stalledSeconds ?? 30) * 1000,
    maxStalledCount: 2,
    autorun: false,
  });
  worker.on('failed', (job, err) => {
    if (job && job.attemptsMade < (job.opts.attempts ?? 1)) o.onJob?.({ id: String(job.id), phase: 'retry', error: err.message });
  });
  worker.on('error', () => undefined);
  worker.on('drained', () => clock.drained());
  worker.on('closing', () => clock.drained());
  // Lock renewals run on a timer beside the images: their time counts as the queue's too.
  const extend = worker.extendJobLocks.bind(worker);
  worker.extendJobLocks = (ids, tokens, ms) => timed(times, 'queue', () => extend(ids, tokens, ms));
  const stop = async (): Promise<void> => {
    // SIGTERM or Ctrl-C: abort the running images (nothing half-delivered stays), so their
    // jobs fail this try and go back to the queue for another worker.
    for (const c of running) c.abort();
    await worker.close();
  };
  o.signal?.addEventListener('abort', () => void stop(), { once: true });
  // The CLI's SIGTERM/SIGINT handler runs these (for a few seconds) before it exits.
  const unregister = onInterrupt(stop);
  const idle = o.untilEmpty ? await watchEmpty(worker, o) : undefined;
  times.startup = sinceStart();
  clock.begin();
  try {
    await worker.run();
  } finally {
    clock.stop();
    unregister();
    idle?.stop();
    connection.disconnect();
  }
  summary.times = roundTimes(times);
  return summary;
}

async function runJob(job: Job<FleetJobData>, name: string, o: WorkerOptions, running: Set<AbortController>, summary: WorkerSummary): Promise<{ status: string }> {
  const data = job.data;
  const controller = new AbortController();
  running.add(controller);
  const timer = setTimeout(() => controller.abort(new FleetError('E_TIMEOUT', `image ${data.item.id} took more than ${data.timeout} s`)), data.timeout * 1000);
  const lastTry = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  const options: PipelineOptions = {
    store: openStore(data.out, o.remote),
    ...(o.remote ? { remote: o.remote } : {}),
    ...(o.bundle ? { bundle: o.bundle } : {}),
    ...(data.formats ? { formats: data.formats } : {}),
    ...(data.translate ? { translate: data.translate } : {}),
    ...(data.verify ? { verify: data.verify } : {}),
    worker: name,
    times: summary.times,
    attempt: job.attemptsMade + 1,
    signal: controller.signal,
    throwTransient: !lastTry,
  };
  o.onJob?.({ id: data.item.id, phase: 'start' });
  try {
    let result: ImageResult;
    const timedOut = (): FleetError | undefined => {
      const reason: unknown = controller.signal.reason;
      return reason instanceof FleetError && reason.code === 'E_TIMEOUT' ? reason : undefined;
    };
    try {
      // A try whose stages all finished is done, even when the timer fired during its last
      // write: the timeout stops images that hang, and every stage checks it before it starts.
      result = await processImage(data.item, options);
    } catch (err) {
      // Past its timeout on the last try: recorded as failed, so the report counts it.
      const reason = timedOut();
      if (!lastTry || !reason) throw err;
      const { signal: _gone, ...rest } = options;
      result = await recordFailure(data.item, reason, rest);
    }
    summary.processed++;
    summary[result.status === 'done' ? 'done' : 'failed']++;
    o.onJob?.({ id: data.item.id, phase: 'end', result });
    return { status: result.status };
  } finally {
    clearTimeout(timer);
    running.delete(controller);
  }
}

/** Close the worker once the queue has no job waiting, delayed or active for a few polls. */
async function watchEmpty(worker: Worker, o: QueueOptions): Promise<{ stop(): void }> {
  const { bullmq } = await libs();
  const connection = await connect(o);
  const q = new bullmq.Queue(o.name ?? DEFAULT_QUEUE, { connection });
  let quiet = 0;
  const timer = setInterval(() => {
    void q.getJobCounts('waiting', 'active', 'delayed', 'prioritized').then((c) => {
      quiet = Object.values(c).every((n) => n === 0) ? quiet + 1 : 0;
      if (quiet >= 3) void worker.close();
    }, () => undefined);
  }, 500);
  return {
    stop: () => {
      clearInterval(timer);
      void q.close().finally(() => connection.disconnect());
    },
  };
}

export interface QueueStatus {
  queue: string;
  counts: Record<string, number>;
  /** Running images and the worker running each. */
  active: { id: string; worker: string | null; attempt: number; since: string | null }[];
  /** Jobs that used up their tries (their records say why). */
  failed: { id: string; reason: string }[];
  workers: string[];
}

/** Counts, what runs where, and which jobs failed for good. */
export async function queueStatus(o: QueueOptions): Promise<QueueStatus> {
  return withQueue(o, async (q) => {
    const counts = await q.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized');
    const active = await q.getActive(0, 999);
    const failed = await q.getFailed(0, 999);
    const workers = await q.getWorkers();
    return {
      queue: q.name,
      counts,
      active: active.map((j) => ({ id: String(j.id), worker: j.processedBy ?? null, attempt: j.attemptsMade + 1, since: j.processedOn ? new Date(j.processedOn).toISOString() : null })),
      failed: failed.map((j) => ({ id: String(j.id), reason: j.failedReason })),
      workers: workers.map((w) => w.name ?? w.id ?? '').filter(Boolean).sort(),
    };
  });
}
