import { BaseDevice, limiter } from '@amitrans/block';
import { fetchRange, type FetchOptions, type RangeSource } from './source.js';
import { withRetry } from './retry.js';
import type { TransferMeter } from './meter.js';

/** Reads at least this large are data being copied, not looked up: not kept in the cache. */
const DROP_BEHIND = 1024 * 1024;

export interface RemoteDeviceOptions extends FetchOptions {
  /** Bytes per cached block, and the unit of every request. Default 256 KiB. */
  readonly blockSize?: number;
  /** Most bytes the block cache holds. Default 32 MiB. */
  readonly cacheBytes?: number;
  /** Most requests in flight at once. Default 4. */
  readonly concurrency?: number;
  /** The largest single ranged GET. Default 2 MiB. */
  readonly maxRequest?: number;
  /** How far ahead a sequential reader is read. Default 8 MiB (with the request size and concurrency, it bounds what a conversion holds). */
  readonly readAheadMax?: number;
  /** Counts the bytes received, for the command's report and progress. */
  readonly meter?: TransferMeter;
}

/**
 * A remote object as a read-only block device. Reads are served from a cache of aligned
 * blocks (least recently used go first), so the scattered small reads of an inspection
 * cost one request per block; the blocks a read misses are fetched in few large ranged
 * GETs, at most `concurrency` at a time. A reader going forward in order (a conversion)
 * has the blocks after it fetched ahead, in a window that doubles up to `readAheadMax`.
 * Every GET is pinned to the version the HEAD saw, so a changed object is an E_CHANGED
 * error and never a mix of two versions.
 */
export class RemoteDevice extends BaseDevice {
  readonly source: RangeSource;
  readonly version: string | undefined;
  /** Bytes received from the network so far. */
  bytesFetched = 0;
  requests = 0;
  readonly #o: RemoteDeviceOptions;
  readonly #blockSize: number;
  readonly #maxBlocks: number;
  readonly #maxRequestBlocks: number;
  readonly #readAheadBlocks: number;
  readonly #limit: <T>(task: () => Promise<T>) => Promise<T>;
  readonly #blocks = new Map<number, Promise<Uint8Array>>();
  #nextSequential = -1;
  #streak = 0;

  private constructor(source: RangeSource, size: number, version: string | undefined, o: RemoteDeviceOptions) {
    super(size, false, 'remote object');
    this.source = source;
    this.version = version;
    this.#o = o;
    this.#blockSize = o.blockSize ?? 256 * 1024;
    this.#maxBlocks = Math.max(8, Math.floor((o.cacheBytes ?? 32 * 1024 * 1024) / this.#blockSize));
    this.#maxRequestBlocks = Math.max(1, Math.floor((o.maxRequest ?? 2 * 1024 * 1024) / this.#blockSize));
    this.#readAheadBlocks = Math.max(1, Math.floor((o.readAheadMax ?? 8 * 1024 * 1024) / this.#blockSize));
    this.#limit = limiter(Math.max(1, o.concurrency ?? 4));
  }

  /** HEAD the object (size, ETag) and return it as a device. */
  static async open(source: RangeSource, o: RemoteDeviceOptions = {}): Promise<RemoteDevice> {
    const head = await withRetry(source.name, () => source.head(), o);
    o.meter?.opened(head.size);
    return new RemoteDevice(source, head.size, head.version, o);
  }

  get name(): string {
    return this.source.name;
  }

  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    const first = Math.floor(position / this.#blockSize);
    const last = Math.floor((position + buffer.length - 1) / this.#blockSize);
    const sequential = position === this.#nextSequential;
    this.#nextSequential = position + buffer.length;
    this.#streak = sequential ? this.#streak + 1 : 0;
    const blocks = this.#request(first, last);
    // Two reads in a row that follow each other: fetch what comes next while this one is used.
    if (this.#streak >= 2) {
      const ahead = Math.min(this.#readAheadBlocks, (last - first + 1) * 2 ** Math.min(this.#streak - 2, 6));
      this.#request(last + 1, last + ahead).forEach((p) => p.catch(() => undefined));
    }
    for (let i = first; i <= last; i++) {
      const data = await blocks[i - first]!;
      const start = i * this.#blockSize;
      const from = Math.max(position, start);
      const to = Math.min(position + buffer.length, start + data.length);
      buffer.set(data.subarray(from - start, to - start), from - position);
    }
    // Drop-behind: a streaming reader, or one copying a megabyte or more at once (a writer
    // reading the used extents of a filesystem), will not come back for what it has read;
    // keeping it would grow a conversion's memory by the whole cache and push out the small
    // blocks (metadata) that are read again.
    if (this.#streak >= 2 || buffer.length >= DROP_BEHIND) {
      const end = position + buffer.length;
      for (let i = first; (i + 1) * this.#blockSize <= end; i++) this.#blocks.delete(i);
    }
  }

  /** The blocks first..last, fetching the missing ones in runs of contiguous blocks. */
  #request(first: number, last: number): Promise<Uint8Array>[] {
    const lastBlock = Math.ceil(this.size / this.#blockSize) - 1;
    const end = Math.min(last, lastBlock);
    const out: Promise<Uint8Array>[] = [];
    let runStart = -1;
    for (let i = first; i <= end + 1; i++) {
      const cached = i <= end ? this.#blocks.get(i) : undefined;
      const missing = i <= end && cached === undefined;
      if (missing && runStart < 0) runStart = i;
      const runFull = runStart >= 0 && i - runStart >= this.#maxRequestBlocks;
      if (runStart >= 0 && (!missing || runFull)) {
        out.push(...this.#fetchRun(runStart, i - 1));
        runStart = missing ? i : -1;
      }
      if (cached) {
        // Most recently used goes last.
        this.#blocks.delete(i);
        this.#blocks.set(i, cached);
        out.push(cached);
      }
    }
    this.#evict();
    return out;
  }

  #fetchRun(first: number, last: number): Promise<Uint8Array>[] {
    const offset = first * this.#blockSize;
    const length = Math.min(this.size, (last + 1) * this.#blockSize) - offset;
    const run = this.#limit(async () => {
      const data = new Uint8Array(length);
      this.requests++;
      await fetchRange(this.source, this.version, data, offset, {
        ...this.#o,
        onBytes: (n) => {
          this.bytesFetched += n;
          this.#o.onBytes?.(n);
          this.#o.meter?.received(n);
        },
      });
      return data;
    });
    const out: Promise<Uint8Array>[] = [];
    for (let i = first; i <= last; i++) {
      const at = (i - first) * this.#blockSize;
      const block = run.then((d) => d.subarray(at, Math.min(d.length, at + this.#blockSize)));
      // A failed fetch is not cached: the next read of these blocks asks again.
      block.catch(() => {
        if (this.#blocks.get(i) === block) this.#blocks.delete(i);
      });
      this.#blocks.set(i, block);
      out.push(block);
    }
    return out;
  }

  #evict(): void {
    while (this.#blocks.size > this.#maxBlocks) this.#blocks.delete(this.#blocks.keys().next().value!);
  }

  protected override async _close(): Promise<void> {
    this.#blocks.clear();
    await this.source.close();
  }
}
