import { BaseDevice, limiter } from '@amitrans/block';
import { fetchRange, type FetchOptions, type RangeSource } from './source.js';
import { withRetry } from './retry.js';
import type { TransferMeter } from './meter.js';
import { boundYoungGeneration } from './heap.js';

/**
 * Reads at least this large are data being copied, not looked up: fetched straight into
 * the caller's buffer, not kept in the cache and not read ahead. Their callers (the
 * writers' read-ahead windows) already keep several in flight; a cache buffer per request
 * would only add a copy and, until the collector frees it, tens of MiB to a conversion.
 */
const DIRECT_READ = 1024 * 1024;

export interface RemoteDeviceOptions extends FetchOptions {
  /** Bytes per cached block, and the unit of every request. Default 256 KiB. */
  readonly blockSize?: number;
  /** Most bytes the block cache holds. Default 32 MiB. */
  readonly cacheBytes?: number;
  /** Most requests in flight at once. Default 4. */
  readonly concurrency?: number;
  /** The largest single ranged GET. Default 2 MiB. */
  readonly maxRequest?: number;
  /** How far ahead a sequential reader of small pieces is read. Default 8 MiB. */
  readonly readAheadMax?: number;
  /** Counts the bytes received, for the command's report and progress. */
  readonly meter?: TransferMeter;
}

/**
 * A remote object as a read-only block device. Reads are served from a cache of aligned
 * blocks (least recently used go first), so the scattered small reads of an inspection
 * cost one request per block; the blocks a read misses are fetched in few large ranged
 * GETs, at most `concurrency` at a time. A reader going forward in small reads has the
 * blocks after it fetched ahead, in a window that doubles up to `readAheadMax`; reads of a
 * megabyte or more (a conversion's windows) go straight into the caller's buffer.
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
  readonly #maxRequest: number;
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
    this.#maxRequest = this.#maxRequestBlocks * this.#blockSize;
    this.#readAheadBlocks = Math.max(1, Math.floor((o.readAheadMax ?? 8 * 1024 * 1024) / this.#blockSize));
    this.#limit = limiter(Math.max(1, o.concurrency ?? 4));
  }

  /** HEAD the object (size, ETag) and return it as a device. */
  static async open(source: RangeSource, o: RemoteDeviceOptions = {}): Promise<RemoteDevice> {
    boundYoungGeneration();
    const head = await withRetry(source.name, () => source.head(), o);
    o.meter?.opened(head.size);
    return new RemoteDevice(source, head.size, head.version, o);
  }

  get name(): string {
    return this.source.name;
  }

  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    if (buffer.length >= DIRECT_READ) {
      this.#nextSequential = position + buffer.length;
      this.#streak = 0;
      return this.#readDirect(buffer, position);
    }
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
    // Drop-behind: a streaming reader will not come back for what it has read; keeping it
    // would grow a conversion's memory by the whole cache and push out the small blocks
    // (metadata) that are read again.
    if (this.#streak >= 2) this.#dropBehind(first, position + buffer.length);
  }

  /**
   * A large read: blocks already cached (or in flight) are copied from the cache, the rest
   * is fetched straight into `buffer` in requests of at most `maxRequest`, in parallel.
   */
  async #readDirect(buffer: Uint8Array, position: number): Promise<void> {
    const end = position + buffer.length;
    const first = Math.floor(position / this.#blockSize);
    const last = Math.floor((end - 1) / this.#blockSize);
    const tasks: Promise<void>[] = [];
    const fetchGap = (from: number, to: number): void => {
      for (let at = from; at < to; at += this.#maxRequest) {
        const into = buffer.subarray(at - position, Math.min(to, at + this.#maxRequest) - position);
        tasks.push(this.#limit(() => this.#fetch(into, at)));
      }
    };
    let gap = position;
    for (let i = first; i <= last; i++) {
      const cached = this.#blocks.get(i);
      if (cached === undefined) continue;
      const start = i * this.#blockSize;
      const from = Math.max(position, start);
      const to = Math.min(end, start + this.#blockSize);
      fetchGap(gap, from);
      tasks.push(cached.then((data) => buffer.set(data.subarray(from - start, to - start), from - position)));
      gap = to;
    }
    fetchGap(gap, end);
    // Every request settles before the read does: none writes into the buffer afterwards.
    const failed = (await Promise.allSettled(tasks)).find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    // A reader copying a megabyte or more at once (a writer reading the used extents of a
    // filesystem) will not come back for it either.
    this.#dropBehind(first, end);
  }

  #dropBehind(first: number, end: number): void {
    for (let i = first; (i + 1) * this.#blockSize <= end; i++) this.#blocks.delete(i);
  }

  /** One ranged read into `into`, counted. */
  async #fetch(into: Uint8Array, offset: number): Promise<void> {
    this.requests++;
    await fetchRange(this.source, this.version, into, offset, {
      ...this.#o,
      onBytes: (n) => {
        this.bytesFetched += n;
        this.#o.onBytes?.(n);
        this.#o.meter?.received(n);
      },
    });
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
      await this.#fetch(data, offset);
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
