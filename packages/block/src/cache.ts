import { BaseDevice, type BlockDevice, type Extent, type Range } from './device.js';

export interface CachedDeviceOptions {
  /** Bytes per cached chunk (aligned). Default 256 KiB. */
  chunkSize?: number;
  /** Most bytes held. Default 32 MiB. */
  maxBytes?: number;
}

/**
 * A read cache in aligned chunks with least-recently-used eviction, for consumers that
 * read a device in many small pieces (libext2fs reads block by block). Writes go through
 * to the base and update cached chunks, so the cache never goes stale through this device;
 * writes made to the base by others are not seen.
 */
export class CachedDevice extends BaseDevice {
  readonly base: BlockDevice;
  private readonly chunkSize: number;
  private readonly maxChunks: number;
  private readonly chunks = new Map<number, Uint8Array>();
  hits = 0;
  misses = 0;

  constructor(base: BlockDevice, options: CachedDeviceOptions = {}) {
    super(base.size, base.writable, 'cached device');
    this.base = base;
    this.chunkSize = options.chunkSize ?? 256 * 1024;
    this.maxChunks = Math.max(1, Math.floor((options.maxBytes ?? 32 * 1024 * 1024) / this.chunkSize));
  }

  private async chunk(index: number): Promise<Uint8Array> {
    let c = this.chunks.get(index);
    if (c) {
      this.hits++;
      // Most recently used goes last.
      this.chunks.delete(index);
      this.chunks.set(index, c);
      return c;
    }
    this.misses++;
    const start = index * this.chunkSize;
    c = new Uint8Array(Math.min(this.chunkSize, this.size - start));
    await this.base.read(c, start);
    this.chunks.set(index, c);
    if (this.chunks.size > this.maxChunks) this.chunks.delete(this.chunks.keys().next().value!);
    return c;
  }

  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    // Large reads bypass the cache (a file copied out): only what is already cached is used.
    if (buffer.length >= 4 * this.chunkSize) {
      await this.base.read(buffer, position);
      this.overlayCached(buffer, position);
      return;
    }
    const end = position + buffer.length;
    for (let at = position; at < end; ) {
      const index = Math.floor(at / this.chunkSize);
      const start = index * this.chunkSize;
      const c = await this.chunk(index);
      const stop = Math.min(end, start + c.length);
      buffer.set(c.subarray(at - start, stop - start), at - position);
      at = stop;
    }
  }

  /** Cached chunks are authoritative (writes updated them); copy them over a direct read. */
  private overlayCached(buffer: Uint8Array, position: number): void {
    this.eachCached(position, buffer.length, (c, inChunk, inBuffer, n) => buffer.set(c.subarray(inChunk, inChunk + n), inBuffer));
  }

  protected override async _write(buffer: Uint8Array, position: number): Promise<void> {
    await this.base.write(buffer, position);
    this.eachCached(position, buffer.length, (c, inChunk, inBuffer, n) => c.set(buffer.subarray(inBuffer, inBuffer + n), inChunk));
  }

  /** Visit the cached chunks that overlap [position, position + length). */
  private eachCached(position: number, length: number, fn: (chunk: Uint8Array, inChunk: number, inBuffer: number, n: number) => void): void {
    const end = position + length;
    for (let index = Math.floor(position / this.chunkSize); index * this.chunkSize < end; index++) {
      const c = this.chunks.get(index);
      if (!c) continue;
      const start = index * this.chunkSize;
      const s = Math.max(position, start);
      const t = Math.min(end, start + c.length);
      if (t > s) fn(c, s - start, s - position, t - s);
    }
  }

  protected override _extents(range: Range): AsyncIterable<Extent> {
    return this.base.extents(range);
  }
}
