import { ImageError } from './errors.js';
import type { Sink } from './sink.js';

/** What WriteBehind needs of a sink (a Sink, or a CountingSink over one). */
export type PositionalSink = Pick<Sink, 'seekable' | 'position' | 'pwrite' | 'skip'>;

/**
 * Sequential writes to a seekable sink that keep running while the writer reads and scans
 * its next window, so the source's reads and the output's writes overlap instead of taking
 * turns (one thread-pool thread copies into the page cache while another reads).
 *
 * Each write is a positional write fixed when it is issued, so completion order does not
 * matter. The caller's buffers must stay untouched until their window is released:
 * `endWindow()` closes the current window's batch and returns once the batch before it is
 * done, which is what readAhead needs before it reuses that buffer (it keeps the previous
 * window intact until the one after the current is asked for).
 * At most two windows of writes are ever in flight.
 *
 * A write larger than MAX_WRITE goes out as several, issued together. Why: on Linux 6.18
 * (ext4 with large page-cache folios), writes of 2 MiB or more at 2 MiB-aligned offsets were
 * often far slower than smaller ones, most likely from filling 2 MiB folios. A random 1 GiB
 * raw to raw took 0.47-1.77 s with 2 MiB writes and 0.48-0.59 s with 1 MiB writes; to
 * qcow2, 0.75-0.91 s with its 4 MiB runs as single writes and 0.50-0.59 s split (8 runs of
 * each, alternating). qemu-img writes 2 MiB at a time.
 */
export const MAX_WRITE = 1024 * 1024;

export class WriteBehind {
  readonly sink: PositionalSink;
  #position: number;
  #current: Promise<void>[] = [];
  #previous: Promise<void> = Promise.resolve();

  /**
   * Run `body` with a WriteBehind on `sink`: when it returns every write is done and the
   * sink's position is past the last one; when it throws, no write is left running.
   * (A CountingSink under it counts the bytes.)
   */
  static async over(sink: PositionalSink, body: (out: WriteBehind) => Promise<void>): Promise<void> {
    const out = new WriteBehind(sink);
    try {
      await body(out);
      await out.finish();
    } catch (err) {
      await out.settle();
      throw err;
    }
  }

  constructor(sink: PositionalSink) {
    if (!sink.seekable) throw new ImageError('E_UNSUPPORTED', 'write-behind needs a seekable output');
    this.sink = sink;
    this.#position = sink.position;
  }

  /** Where the next `write` goes (the sink's own position catches up in `finish`). */
  get position(): number {
    return this.#position;
  }

  /** Start writing `data` at the current position; the bytes must not change until released. */
  write(data: Uint8Array): void {
    for (let at = 0; at < data.length; at += MAX_WRITE) {
      const done = this.sink.pwrite(data.subarray(at, Math.min(data.length, at + MAX_WRITE)), this.#position + at);
      // Reported by endWindow/finish; this only keeps it from being reported as unhandled first.
      done.catch(() => undefined);
      this.#current.push(done);
    }
    this.#position += data.length;
  }

  /** Leave `length` bytes unwritten (a hole on a file). */
  skip(length: number): void {
    if (length < 0) throw new RangeError(`cannot skip back ${-length} bytes`);
    this.#position += length;
  }

  /** The current window is issued: wait until the previous window's writes are done. */
  async endWindow(): Promise<void> {
    const batch = Promise.all(this.#current).then(() => undefined);
    batch.catch(() => undefined);
    this.#current = [];
    const previous = this.#previous;
    this.#previous = batch;
    await previous;
  }

  /** Wait for every write, then bring the sink's position to the end of what was written. */
  async finish(): Promise<void> {
    await this.endWindow();
    await this.#previous;
    await this.sink.skip(this.#position - this.sink.position);
  }

  /** After an error: wait for writes still running, whose buffers are about to be reused. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.#current, this.#previous]);
  }
}
