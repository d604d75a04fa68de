import { ImageError } from '@amitrans/block';
import { TransientError, withRetry, type RetryOptions } from './retry.js';

/** What a HEAD tells: the object's size and the tag that pins this version of it. */
export interface ObjectHead {
  readonly size: number;
  /** The ETag (or, for a server without one, the Last-Modified date) every read is pinned to. */
  readonly version?: string;
}

/**
 * One remote object read by byte ranges. `get` streams [offset, offset + into.length)
 * into `into`, counting what arrived in `progress.received` so a broken body is resumed
 * at the byte it stopped, never read twice into a different place.
 */
export interface RangeSource {
  /** The URL as it may be printed (no credentials). */
  readonly name: string;
  head(): Promise<ObjectHead>;
  get(offset: number, into: Uint8Array, version: string | undefined, progress: { received: number }): Promise<void>;
  close(): Promise<void>;
}

export interface FetchOptions extends RetryOptions {
  /** Counts every byte received from the network (benchmarks, --json). */
  readonly onBytes?: (n: number) => void;
}

/** Read one range fully, retrying transient failures and resuming where a body broke. */
export async function fetchRange(source: RangeSource, version: string | undefined, into: Uint8Array, offset: number, o: FetchOptions = {}): Promise<void> {
  let done = 0;
  let last = 0;
  await withRetry(source.name, async () => {
    const progress = { received: 0 };
    try {
      await source.get(offset + done, into.subarray(done), version, progress);
    } finally {
      last = progress.received;
      done += progress.received;
      o.onBytes?.(progress.received);
    }
  }, { ...o, progressed: () => last > 0 });
  if (done !== into.length) {
    throw new ImageError('E_TRUNCATED', `the server sent ${done} of ${into.length} bytes`, { file: source.name, offset });
  }
}

/**
 * Copy a response body into `into`, failing as transient if it stalls for `idleMs`, ends
 * early or runs long (a server that ignored the range).
 */
export async function readBody(body: AsyncIterable<Uint8Array> & { destroy?: (err?: Error) => void }, into: Uint8Array, progress: { received: number }, idleMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let stalled = false;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      body.destroy?.(new TransientError(`no data for ${idleMs / 1000} s`));
    }, idleMs);
  };
  arm();
  try {
    for await (const chunk of body) {
      arm();
      const room = into.length - progress.received;
      if (chunk.length > room) {
        into.set(chunk.subarray(0, room), progress.received);
        progress.received += room;
        body.destroy?.();
        throw new ImageError('E_CORRUPT', `the server sent more bytes than the range asked for`);
      }
      into.set(chunk, progress.received);
      progress.received += chunk.length;
    }
  } catch (err) {
    if (err instanceof ImageError) throw err;
    throw new TransientError(stalled ? `no data for ${idleMs / 1000} s` : `the response broke off: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  if (progress.received < into.length) {
    throw new TransientError(`the response ended after ${progress.received} of ${into.length} bytes`);
  }
}
