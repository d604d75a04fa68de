import { availableParallelism } from 'node:os';
import { isZero } from '@amitrans/block';
import { constants, crc32, deflateRaw } from 'node:zlib';

/** Input per deflate job: big enough that job overhead is noise, small enough to keep both cores fed. */
export const GZIP_BLOCK = 1024 * 1024;
const WINDOW = 32 * 1024;

/**
 * gzip at level 6 on every core, the way pigz does it: the input is cut into blocks, each
 * deflated as raw deflate on Node's thread pool with the previous 32 KiB as its dictionary
 * and ended by a sync flush (the last one by a final block), and the results concatenated
 * in order behind one gzip header, with the CRC-32 and length of the whole input in the
 * trailer. Any gunzip reads it as one member. The output depends only on the input.
 */
export class ParallelGzip {
  readonly #emit: (data: Uint8Array) => Promise<void>;
  readonly #window: number;
  readonly #inflight: Promise<Uint8Array>[] = [];
  #block: Uint8Array = new Uint8Array(GZIP_BLOCK);
  #used = 0;
  #dictionary: Uint8Array = new Uint8Array(0);
  /** Deflate output of a whole zero block after a zero window: the same bytes every time. */
  #zeroBlock: Promise<Uint8Array> | undefined;
  #crc = 0;
  #length = 0;
  #started = false;

  constructor(emit: (data: Uint8Array) => Promise<void>, threads = Math.max(1, availableParallelism())) {
    this.#emit = emit;
    // Two jobs per thread keep the pool busy while the main thread consumes the oldest.
    this.#window = threads * 2;
  }

  /** Bytes of input so far. */
  get length(): number {
    return this.#length;
  }

  async write(data: Uint8Array): Promise<void> {
    if (!this.#started) {
      this.#started = true;
      // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=3 (Unix)
      await this.#emit(Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3));
    }
    this.#crc = crc32(data, this.#crc);
    this.#length += data.length;
    let i = 0;
    while (i < data.length) {
      const n = Math.min(GZIP_BLOCK - this.#used, data.length - i);
      this.#block.set(data.subarray(i, i + n), this.#used);
      this.#used += n;
      i += n;
      if (this.#used === GZIP_BLOCK) await this.#submit(false);
    }
  }

  async end(): Promise<void> {
    if (!this.#started) await this.write(new Uint8Array(0));
    await this.#submit(true);
    while (this.#inflight.length > 0) await this.#emit(await this.#inflight.shift()!);
    const trailer = new Uint8Array(8);
    const v = new DataView(trailer.buffer);
    v.setUint32(0, this.#crc >>> 0, true);
    v.setUint32(4, this.#length % 2 ** 32, true);
    await this.#emit(trailer);
  }

  /** Wait for what is in flight, without emitting (after a failure). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.#inflight.splice(0));
  }

  async #submit(last: boolean): Promise<void> {
    const input = this.#block.subarray(0, this.#used);
    const dictionary = this.#dictionary;
    // Free space and holes: a zero block after a zero window deflates to the same bytes
    // every time, so it is deflated once (the output does not change, only the work).
    const zeros = !last && input.length === GZIP_BLOCK && dictionary.length === WINDOW && isZero(input) && isZero(dictionary);
    if (zeros && this.#zeroBlock) {
      this.#inflight.push(this.#zeroBlock);
      this.#used = 0;
      while (this.#inflight.length >= this.#window) await this.#emit(await this.#inflight.shift()!);
      return;
    }
    const job = new Promise<Uint8Array>((resolve, reject) => {
      deflateRaw(input, {
        level: 6,
        ...(dictionary.length > 0 ? { dictionary } : {}),
        finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
        chunkSize: Math.max(64 * 1024, input.length + 1024),
      }, (err, out) => (err ? reject(err) : resolve(out)));
    });
    job.catch(() => undefined);
    if (zeros) this.#zeroBlock = job;
    this.#inflight.push(job);
    // The next block's dictionary is this block's tail; the block itself belongs to the job now.
    this.#dictionary = input.subarray(Math.max(0, input.length - WINDOW));
    this.#block = new Uint8Array(GZIP_BLOCK);
    this.#used = 0;
    while (this.#inflight.length >= this.#window) await this.#emit(await this.#inflight.shift()!);
  }
}
