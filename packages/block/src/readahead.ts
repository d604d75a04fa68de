import type { BlockDevice, Range } from './device.js';
import { alignedBytes } from './bytes.js';
import { ImageError } from './errors.js';

/**
 * One window of a device to read: `length` bytes from `offset`. When `pieces` is given,
 * only those ranges (inside the window, sorted) are read and the rest of the window reads
 * as zeros; otherwise the whole window is read.
 */
export interface ReadPlan {
  readonly offset: number;
  readonly length: number;
  readonly pieces?: readonly Range[];
}

export interface ReadWindow {
  readonly offset: number;
  readonly length: number;
  /** The window's bytes: a view of a pooled buffer, valid until the next window is asked for. */
  readonly data: Uint8Array;
  /** Bytes actually read from the device (the pieces). */
  readonly bytesRead: number;
}

export interface ReadAheadOptions {
  /** The largest window `plans` will ask for; the size of each pooled buffer. */
  readonly maxLength: number;
  /** Windows read ahead of the one being consumed. Default 2. */
  readonly depth?: number;
  readonly signal?: AbortSignal | undefined;
}

/**
 * Read `plans` in order while the consumer works: up to `depth` windows are read ahead
 * into a small ring of reused buffers, so reading the next window overlaps processing
 * and writing this one, and memory stays at (depth + 1) * maxLength whatever the size
 * of the device. A window's bytes stay valid while the consumer works on the next one:
 * they are reused once the consumer asks for the window after that (copy what it keeps
 * longer). So a consumer may leave one window's writes running while it scans the next
 * (see WriteBehind).
 */
export async function* readAhead(
  device: BlockDevice,
  plans: AsyncIterable<ReadPlan> | Iterable<ReadPlan>,
  options: ReadAheadOptions,
): AsyncIterable<ReadWindow> {
  const depth = Math.max(1, options.depth ?? 2);
  const ring: Uint8Array[] = [];
  let slot = 0;
  const source: AsyncIterator<ReadPlan> | Iterator<ReadPlan> =
    Symbol.asyncIterator in plans ? plans[Symbol.asyncIterator]() : plans[Symbol.iterator]();
  let exhausted = false;
  const inflight: { plan: ReadPlan; data: Uint8Array; done: Promise<number> }[] = [];

  const issue = async (): Promise<void> => {
    while (!exhausted && inflight.length < depth) {
      const next = await source.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      const plan = next.value;
      if (plan.length > options.maxLength) {
        throw new ImageError('E_TOO_LARGE', `read-ahead window of ${plan.length} bytes is above its ${options.maxLength}-byte buffers`, { offset: plan.offset });
      }
      // The ring has depth + 1 buffers: `depth` being filled and the one the consumer holds.
      // A window is handed out before its slot is refilled, so while the consumer works on
      // window k only depth - 1 reads run, and window k - 1's buffer is still untouched.
      if (ring.length <= slot) ring.push(alignedBytes(options.maxLength));
      const data = ring[slot]!.subarray(0, plan.length);
      slot = (slot + 1) % (depth + 1);
      const done = readPlan(device, plan, data);
      // Awaited in order below; this only keeps a failure from being reported as unhandled first.
      done.catch(() => undefined);
      inflight.push({ plan, data, done });
    }
  };

  try {
    await issue();
    while (inflight.length > 0) {
      options.signal?.throwIfAborted();
      const head = inflight[0]!;
      const bytesRead = await head.done;
      inflight.shift();
      yield { offset: head.plan.offset, length: head.plan.length, data: head.data, bytesRead };
      // The consumer is done with the previous window: its buffer takes the next read.
      await issue();
    }
  } finally {
    // An early exit (error, break) leaves no read running into a buffer behind our back.
    await Promise.allSettled(inflight.map((w) => w.done));
  }
}

async function readPlan(device: BlockDevice, plan: ReadPlan, data: Uint8Array): Promise<number> {
  const pieces = plan.pieces ?? [{ offset: plan.offset, length: plan.length }];
  let at = plan.offset;
  let bytesRead = 0;
  const reads: Promise<void>[] = [];
  for (const p of pieces) {
    if (p.offset > at) data.fill(0, at - plan.offset, p.offset - plan.offset);
    if (p.length > 0) reads.push(device.read(data.subarray(p.offset - plan.offset, p.offset - plan.offset + p.length), p.offset));
    bytesRead += p.length;
    at = p.offset + p.length;
  }
  if (at < plan.offset + plan.length) data.fill(0, at - plan.offset);
  await Promise.all(reads);
  return bytesRead;
}
