import type { BlockDevice } from '@amitrans/block';

/**
 * Random access to the bytes of one initrd file. The reader asks for at most CHUNK bytes
 * at once, so an implementation over an ext2fs file, a block device or a
 * plain file descriptor keeps memory bounded.
 */
export interface InitrdSource {
  /** Length of the initrd file in bytes. */
  readonly size: number;
  /**
   * Up to `length` bytes at `position`; shorter only at the end of the file. The reader
   * always stays within [0, size).
   */
  read(position: number, length: number): Promise<Uint8Array>;
}

/** How much the reader asks a source for at once. */
export const CHUNK = 1024 * 1024;

export function sourceFromBytes(bytes: Uint8Array): InitrdSource {
  return {
    size: bytes.length,
    read: (position, length) => Promise.resolve(bytes.subarray(position, Math.min(bytes.length, position + length))),
  };
}

export function sourceFromBlockDevice(device: BlockDevice): InitrdSource {
  return {
    size: device.size,
    read: async (position, length) => {
      const buf = new Uint8Array(Math.max(0, Math.min(length, device.size - position)));
      await device.read(buf, position);
      return buf;
    },
  };
}

/** Yield the bytes of [start, end) in chunks of at most CHUNK bytes. */
export async function* sourceChunks(source: InitrdSource, start: number, end = source.size): AsyncGenerator<Uint8Array> {
  for (let at = start; at < end; ) {
    const chunk = await source.read(at, Math.min(CHUNK, end - at));
    if (chunk.length === 0) return;
    at += chunk.length;
    yield chunk;
  }
}

/**
 * A forward-only byte stream the cpio walker pulls from: either the raw file (skipping is
 * free) or the output of a decompressor (skipping decompresses and drops).
 */
export interface ByteStream {
  /** Bytes consumed so far, counted from the start of this stream. */
  readonly position: number;
  /** The next byte without consuming it, or -1 at the end. */
  peek(): Promise<number>;
  /** Exactly `n` bytes, or fewer if the stream ends first. */
  read(n: number): Promise<Uint8Array>;
  /** Skip up to `n` bytes; resolves with how many were skipped. */
  skip(n: number): Promise<number>;
  /** Skip zero bytes; resolves with how many were skipped. */
  skipZeros(): Promise<number>;
}

/** The raw file from `start` on; `read` buffers one chunk ahead. */
export class SourceStream implements ByteStream {
  private pos: number;
  private buf: Uint8Array = new Uint8Array(0);
  private bufAt = 0;

  constructor(
    private readonly source: InitrdSource,
    private readonly start: number,
  ) {
    this.pos = start;
  }

  get position(): number {
    return this.pos - this.start;
  }

  /** Absolute file offset of the next byte. */
  get offset(): number {
    return this.pos;
  }

  private async fill(): Promise<boolean> {
    const inBuf = this.pos - this.bufAt;
    if (inBuf >= 0 && inBuf < this.buf.length) return true;
    if (this.pos >= this.source.size) return false;
    this.buf = await this.source.read(this.pos, Math.min(CHUNK, this.source.size - this.pos));
    this.bufAt = this.pos;
    return this.buf.length > 0;
  }

  async peek(): Promise<number> {
    if (!(await this.fill())) return -1;
    return this.buf[this.pos - this.bufAt] ?? -1;
  }

  async read(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(Math.max(0, Math.min(n, this.source.size - this.pos)));
    let got = 0;
    while (got < out.length && (await this.fill())) {
      const from = this.pos - this.bufAt;
      const take = Math.min(out.length - got, this.buf.length - from);
      out.set(this.buf.subarray(from, from + take), got);
      got += take;
      this.pos += take;
    }
    return got === out.length ? out : out.subarray(0, got);
  }

  skip(n: number): Promise<number> {
    const take = Math.max(0, Math.min(n, this.source.size - this.pos));
    this.pos += take;
    return Promise.resolve(take);
  }

  async skipZeros(): Promise<number> {
    const from = this.pos;
    while (await this.fill()) {
      const at = this.pos - this.bufAt;
      const nz = firstNonZero(this.buf, at);
      this.pos += nz - at;
      if (nz < this.buf.length) break;
    }
    return this.pos - from;
  }
}

/**
 * Decompressed output as a stream. It counts every byte against a shared budget and
 * reports the end when the budget runs out, so a decompression bomb costs bounded time
 * and memory; a decoder's error ends the stream and is kept for the caller.
 */
export class ChunkStream implements ByteStream {
  private buf: Uint8Array = new Uint8Array(0);
  private at = 0;
  private pos = 0;
  private ended = false;
  /** The decoder's error message, if it failed. */
  error: string | undefined;
  /** True when the stream stopped because the budget ran out. */
  capped = false;

  constructor(
    private readonly chunks: AsyncIterator<Uint8Array, unknown>,
    private readonly budget: { remaining: number },
  ) {}

  get position(): number {
    return this.pos;
  }

  get atEnd(): boolean {
    return this.ended;
  }

  private async fill(): Promise<boolean> {
    while (this.at >= this.buf.length) {
      if (this.ended) return false;
      if (this.budget.remaining <= 0) {
        this.capped = true;
        this.ended = true;
        return false;
      }
      let r: IteratorResult<Uint8Array, unknown>;
      try {
        r = await this.chunks.next();
      } catch (err) {
        this.error = err instanceof Error ? err.message : String(err);
        this.ended = true;
        return false;
      }
      if (r.done === true) {
        this.ended = true;
        return false;
      }
      let chunk = r.value;
      if (chunk.length > this.budget.remaining) chunk = chunk.subarray(0, this.budget.remaining);
      this.budget.remaining -= chunk.length;
      this.buf = chunk;
      this.at = 0;
    }
    return true;
  }

  async peek(): Promise<number> {
    if (!(await this.fill())) return -1;
    return this.buf[this.at] ?? -1;
  }

  async read(n: number): Promise<Uint8Array> {
    if (this.at + n <= this.buf.length) {
      const out = this.buf.subarray(this.at, this.at + n);
      this.at += n;
      this.pos += n;
      return out;
    }
    const parts: Uint8Array[] = [];
    let got = 0;
    while (got < n && (await this.fill())) {
      const take = Math.min(n - got, this.buf.length - this.at);
      parts.push(this.buf.subarray(this.at, this.at + take));
      this.at += take;
      this.pos += take;
      got += take;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, got);
  }

  async skip(n: number): Promise<number> {
    let got = 0;
    while (got < n && (await this.fill())) {
      const take = Math.min(n - got, this.buf.length - this.at);
      this.at += take;
      this.pos += take;
      got += take;
    }
    return got;
  }

  async skipZeros(): Promise<number> {
    const from = this.pos;
    while (await this.fill()) {
      const nz = firstNonZero(this.buf, this.at);
      this.pos += nz - this.at;
      this.at = nz;
      if (nz < this.buf.length) break;
    }
    return this.pos - from;
  }

  /** Drain the rest of the stream (within the budget); resolves with the bytes dropped. */
  async drain(): Promise<number> {
    return this.skip(Number.MAX_SAFE_INTEGER);
  }
}

const ZEROS = new Uint8Array(64 * 1024);

/** Index of the first non-zero byte at or after `from`, or buf.length. */
export function firstNonZero(buf: Uint8Array, from: number): number {
  let at = from;
  // Compare whole blocks natively first: padding runs can be long.
  while (at + ZEROS.length <= buf.length && Buffer.compare(buf.subarray(at, at + ZEROS.length), ZEROS) === 0) at += ZEROS.length;
  while (at < buf.length && buf[at] === 0) at++;
  return at;
}
