/**
 * Where a fleet process's time went besides the pipelines' stages, in seconds: the fleet's
 * own overhead (queue, journal, store, report) and, apart from it, the time its lanes had
 * nothing to run and its start. Kept always: a few clock reads per image.
 */
export interface FleetTimes {
  /** Queue operations as our code sees them: submit, and a worker's lanes fetching and completing jobs. */
  queue: number;
  /** Result records and journal events written, and the records read to skip what is done. */
  journal: number;
  /** Store checks: whether an output is delivered already. */
  store: number;
  /** report.json and report.html built and written (and the records read for them). */
  report: number;
  /** Lane time with no image to run: none available, the tail of the run, --until-empty's quiet wait. Not overhead. */
  idle: number;
  /** From the process's start to its first piece of work: node, modules, the work list, connecting. Not overhead. */
  startup: number;
}

export type TimeKind = keyof FleetTimes;

/** The kinds that are the fleet's own overhead (idle and start-up are reported apart). */
export const OVERHEAD_KINDS: readonly TimeKind[] = ['queue', 'journal', 'store', 'report'];

export function newTimes(): FleetTimes {
  return { queue: 0, journal: 0, store: 0, report: 0, idle: 0, startup: 0 };
}

/** Run `fn`, adding its time to `kind` of `times` (when there is one), whether it succeeds or throws. */
export async function timed<T>(times: FleetTimes | undefined, kind: TimeKind, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    if (times) times[kind] += (performance.now() - t0) / 1000;
  }
}

/** Add `b` into `a`. */
export function addTimes(a: FleetTimes, b: Partial<FleetTimes>): void {
  for (const k of Object.keys(a) as TimeKind[]) a[k] += b[k] ?? 0;
}

/** Milliseconds are enough for a record. */
export function roundTimes<T extends Partial<FleetTimes>>(t: T): T {
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round((v as number) * 1000) / 1000])) as T;
}

/** Seconds since this process started (node's time origin): its start-up, when read as its work begins. */
export function sinceStart(): number {
  return performance.now() / 1000;
}

/**
 * A queue worker's lanes over time. Each moment, a lane not running an image is either
 * idle (the queue said it is drained, or the worker is closing) or busy with the queue
 * (completing its job, fetching the next): both integrated here from the worker's events.
 */
export class LaneClock {
  #running = 0;
  #drained = false;
  #last = performance.now();

  constructor(private readonly lanes: number, private readonly times: FleetTimes) {}

  #tick(): void {
    const now = performance.now();
    const free = Math.max(0, this.lanes - this.#running);
    this.times[this.#drained ? 'idle' : 'queue'] += (free * (now - this.#last)) / 1000;
    this.#last = now;
  }

  /** The worker starts fetching: the time before is its start-up. */
  begin(): void {
    this.#last = performance.now();
  }

  /** A lane starts an image (the queue had one). */
  start(): void {
    this.#tick();
    this.#running++;
    this.#drained = false;
  }

  end(): void {
    this.#tick();
    this.#running--;
  }

  /** Nothing to fetch until further notice (BullMQ's drained), or the worker is closing. */
  drained(): void {
    this.#tick();
    this.#drained = true;
  }

  /** The worker stopped: account for the time up to now. */
  stop(): void {
    this.#tick();
  }
}
