// Same as @amitrans/qcow2's pool: duplicated so the two format packages stay independent.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * How a cluster is deflated: qcow2 wants raw deflate with a 4 KiB window (QEMU inflates
 * with windowBits -12, so a longer back-reference would be unreadable); VMDK grains are
 * zlib-wrapped streams in every implementation.
 */
export type DeflateMode = 'raw4k' | 'zlib';

// The worker is plain JavaScript evaluated from a string, so it runs the same from the
// TypeScript sources (tests) and from dist/ without a separate file to locate.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
parentPort.on('message', (m) => {
  try {
    const input = new Uint8Array(m.buffer);
    const out = m.mode === 'raw4k'
      ? zlib.deflateRawSync(input, { windowBits: 12 })
      : zlib.deflateSync(input);
    const copy = new Uint8Array(out.length);
    copy.set(out);
    parentPort.postMessage({ id: m.id, buffer: copy.buffer }, [copy.buffer]);
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String(err && err.message || err) });
  }
});
`;

interface Pending {
  resolve: (out: Uint8Array) => void;
  reject: (err: Error) => void;
}

interface Reply {
  id: number;
  buffer?: ArrayBuffer;
  error?: string;
}

/**
 * A few worker threads that deflate clusters, so compression uses every core. Results come
 * back as promises; callers await them in submission order, which keeps the output
 * deterministic whatever order the workers finish in.
 */
export class DeflatePool {
  readonly mode: DeflateMode;
  readonly threads: number;
  private readonly workers: Worker[] = [];
  private readonly busy: number[] = [];
  private readonly pending = new Map<number, Pending & { worker: number }>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor(mode: DeflateMode, threads = Math.min(4, Math.max(2, availableParallelism()))) {
    this.mode = mode;
    this.threads = threads;
    for (let i = 0; i < threads; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      w.unref();
      w.on('message', (m: Reply) => this.settle(m));
      w.on('error', (err) => this.fail(err));
      this.workers.push(w);
      this.busy.push(0);
    }
  }

  /** Deflate `data` (copied; the caller may reuse its buffer). */
  compress(data: Uint8Array): Promise<Uint8Array> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    let worker = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.busy[i]! < this.busy[worker]!) worker = i;
    const copy = new Uint8Array(data.length);
    copy.set(data);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker });
      this.busy[worker]!++;
      this.workers[worker]!.postMessage({ id, mode: this.mode, buffer: copy.buffer }, [copy.buffer]);
    });
  }

  private settle(m: Reply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    this.busy[p.worker]!--;
    if (m.error !== undefined || !m.buffer) p.reject(new Error(`deflate worker: ${m.error ?? 'no output'}`));
    else p.resolve(new Uint8Array(m.buffer));
  }

  private fail(err: Error): void {
    this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}

/**
 * Run `compress` over items in order with at most `window` in flight, handing each result
 * to `consume` in submission order.
 */
export class OrderedQueue<T> {
  private readonly queue: Promise<T>[] = [];
  private readonly window: number;
  private readonly consume: (item: T) => Promise<void>;

  constructor(window: number, consume: (item: T) => Promise<void>) {
    this.window = window;
    this.consume = consume;
  }

  async push(item: Promise<T>): Promise<void> {
    // Avoid an unhandled rejection while the item waits its turn.
    item.catch(() => undefined);
    this.queue.push(item);
    while (this.queue.length >= this.window) await this.consume(await this.queue.shift()!);
  }

  async drain(): Promise<void> {
    while (this.queue.length > 0) await this.consume(await this.queue.shift()!);
  }
}
