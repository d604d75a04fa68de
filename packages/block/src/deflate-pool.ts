import { availableParallelism } from 'node:os';
import { deflate, deflateRaw } from 'node:zlib';

/**
 * How a cluster is deflated: qcow2 wants raw deflate with a 4 KiB window (QEMU inflates
 * with windowBits -12, so a longer back-reference would be unreadable); VMDK grains are
 * zlib-wrapped streams in every implementation. Both at zlib's default level, as QEMU.
 */
export type DeflateMode = 'raw4k' | 'zlib';

/**
 * Deflates clusters on every core. The work runs in Node's own thread pool (zlib's async
 * calls), not in worker threads: no extra JavaScript heaps, nothing to start or stop, and
 * the same bytes as zlib's sync calls. `threads` is how many deflates are worth keeping
 * in flight; callers bound their queue by it and await results in submission order, which
 * keeps the output deterministic whatever order the deflates finish in.
 */
export class DeflatePool {
  readonly mode: DeflateMode;
  readonly threads: number;
  #closed = false;

  constructor(mode: DeflateMode, threads = Math.min(4, Math.max(1, availableParallelism()))) {
    this.mode = mode;
    this.threads = threads;
  }

  /**
   * Deflate `data`. The bytes are read while the promise is pending: the caller must not
   * change them until it settles (hand over a copy of a reused buffer).
   */
  compress(data: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new Error('deflate pool is closed'));
    // One output chunk big enough for the whole result (deflate's worst case is a few bytes
    // per 16 KiB over the input): one pass on the thread pool instead of one per 16 KiB.
    // The bytes do not depend on the chunk size.
    const chunkSize = Math.max(16 * 1024, data.length + 1024);
    return new Promise((resolve, reject) => {
      const done = (err: Error | null, out: Buffer): void => (err ? reject(err) : resolve(out));
      if (this.mode === 'raw4k') deflateRaw(data, { windowBits: 12, chunkSize }, done);
      else deflate(data, { chunkSize }, done);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

/**
 * Run work over items in order with at most `window` in flight, handing each result to
 * `consume` in submission order.
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

  /** Wait for what is still in flight without consuming it (after a failure). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.queue.splice(0));
  }
}

/**
 * At most `n` tasks at a time; the rest wait their turn in order. Bounds how much work
 * (and memory: zlib state and output per inflate) is in flight on Node's thread pool.
 */
export function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}
