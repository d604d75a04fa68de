import { isZeroAt, zeroRuns } from './bytes.js';
import { clusterWindows, type ClusterWindow } from './clusters.js';
import { DeflatePool, OrderedQueue, type DeflateMode } from './deflate-pool.js';
import type { BlockDevice, Range } from './device.js';
import { WriteBehind, type PositionalSink } from './writebehind.js';

/**
 * The one write pipeline of the container writers. A container stores its data in units
 * (qcow2 clusters, VMDK grains, VHD and VDI blocks); a writer says where a unit goes and
 * records it in its map, and this owns the rest: which units to read (those holding any
 * byte of the source's data ranges), reading them ahead, dropping all-zero ones, and
 * writes that keep running while the next window is read (the buffer-reuse rule between
 * readAhead and WriteBehind lives here and nowhere else).
 */
export interface AppendUnitsOptions {
  /** Bytes per unit. */
  readonly unit: number;
  /** Bytes read per window, rounded down to whole units. Default 4 MiB. */
  readonly window?: number;
  /**
   * Bytes stored before each unit (a VHD block's sector bitmap). With a prefix units are
   * placed one at a time; without, back-to-back non-zero units are placed (and written) as one.
   */
  readonly prefix?: Uint8Array;
  /**
   * `count` non-zero units from unit `first` are about to be stored back to back from byte
   * `at` of the sink (their prefixes included): the writer's map records them here.
   */
  place(first: number, count: number, at: number): void | Promise<void>;
  /** Bytes of the virtual disk done; may throw to stop (an abort). */
  readonly progress?: (done: number) => void;
  readonly signal?: AbortSignal | undefined;
}

/**
 * Append the non-zero units of `ranges` to a seekable `sink` from its position, in order.
 * Resolves to the bytes read from `disk` when every write is done.
 */
export async function appendUnits(disk: BlockDevice, ranges: readonly Range[], sink: PositionalSink, o: AppendUnitsOptions): Promise<number> {
  let bytesRead = 0;
  const unit = o.unit;
  await WriteBehind.over(sink, async (out) => {
    const windows = clusterWindows(disk, ranges, unit, { chunkSize: o.window, signal: o.signal, onRead: (n) => (bytesRead += n) });
    for await (const w of windows) {
      for (const r of zeroRuns(w.data, unit)) {
        if (r.zero) continue;
        const first = w.first + r.start / unit;
        if (!o.prefix) {
          await o.place(first, (r.end - r.start) / unit, out.position);
          out.write(w.data.subarray(r.start, r.end));
          continue;
        }
        for (let at = r.start; at < r.end; at += unit) {
          await o.place(first + (at - r.start) / unit, 1, out.position);
          out.write(o.prefix);
          out.write(w.data.subarray(at, at + unit));
        }
      }
      // This window's buffer is reused two windows on: its writes must be done by then.
      await out.endWindow();
      o.progress?.((w.first + w.count) * unit);
    }
  });
  return bytesRead;
}

/**
 * The one compression queue: every non-zero unit of `windows` deflated on the thread pool,
 * handed to `store` in ascending order with its own copy of the raw bytes (for a format
 * that stores a unit raw when deflate does not shrink it).
 */
export async function deflateUnits(
  windows: AsyncIterable<ClusterWindow>,
  unit: number,
  mode: DeflateMode,
  store: (index: number, raw: Uint8Array, packed: Uint8Array) => Promise<void>,
): Promise<void> {
  const pool = new DeflatePool(mode);
  const queue = new OrderedQueue<{ index: number; raw: Uint8Array; packed: Uint8Array }>(pool.threads * 4, (u) => store(u.index, u.raw, u.packed));
  try {
    for await (const w of windows) {
      for (let i = 0; i < w.count; i++) {
        if (isZeroAt(w.data, i * unit, (i + 1) * unit)) continue;
        // The window's buffer is reused: the deflate gets its own copy.
        const raw = w.data.slice(i * unit, (i + 1) * unit);
        const index = w.first + i;
        await queue.push(pool.compress(raw).then((packed) => ({ index, raw, packed })));
      }
    }
    await queue.drain();
  } finally {
    await queue.settle();
    await pool.close();
  }
}
