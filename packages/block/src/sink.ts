import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { alignedBytes } from './bytes.js';
import { ImageError } from './errors.js';
import { writeError, writeFully } from './file.js';
import { checkOutputPath } from './fileguard.js';
import { partialName, removeStalePartials } from './cleanup.js';

/**
 * Where a writer puts its bytes. Writers append with `write`; seekable sinks also allow
 * `pwrite` (patching a header after the data) and leave holes when `skip` moves past
 * unwritten bytes. A sink is finished with `commit()` (the output appears, complete) or
 * `abort()` (nothing is left at the destination).
 */
export interface Sink {
  readonly seekable: boolean;
  /** Bytes from the start of the output to the append point. */
  readonly position: number;
  /** Append at `position`. The sink is done with `data` when this settles: the caller may reuse it. */
  write(data: Uint8Array): Promise<void>;
  /** Move the append point forward by `length` bytes of zeros (a hole when seekable). */
  skip(length: number): Promise<void>;
  /** Write at an absolute position (seekable sinks only); does not move the append point. */
  pwrite(data: Uint8Array, position: number): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

const ZEROS = new Uint8Array(1024 * 1024);

/**
 * A file written under a temporary name in the same directory and renamed over the
 * destination on commit, so a reader never sees a half-written image. Holes stay holes.
 */
export class FileSink implements Sink {
  readonly seekable = true;
  readonly path: string;
  readonly tempPath: string;
  /**
   * Flush the data to the disk before the rename (the default). Off, the page cache
   * writes it back on its own time, as after qemu-img convert (cache=unsafe).
   */
  readonly sync: boolean;
  /** What write errors name: the output, under its final name. */
  private get role(): { path: string; role: string } {
    return { path: this.path, role: 'the output' };
  }
  #position = 0;
  #end = 0;
  #handle: FileHandle | undefined;
  #done = false;

  private constructor(path: string, tempPath: string, handle: FileHandle, sync: boolean) {
    this.path = path;
    this.tempPath = tempPath;
    this.#handle = handle;
    this.sync = sync;
  }

  static async create(path: string, options: { sync?: boolean } = {}): Promise<FileSink> {
    // The finished file is renamed over `path`: never over a device node or a directory.
    await checkOutputPath(path, []);
    await removeStalePartials(path);
    const tempPath = partialName(path, randomBytes(4).toString('hex'));
    let handle: FileHandle;
    try {
      handle = await open(tempPath, 'wx');
    } catch (err) {
      throw new ImageError('E_IO', `cannot create output: ${(err as Error).message}`, { file: path, cause: err });
    }
    const sink = new FileSink(path, tempPath, handle, options.sync ?? true);
    activeSinks.add(sink);
    return sink;
  }

  get position(): number {
    return this.#position;
  }

  private handle(): FileHandle {
    if (!this.#handle) throw new ImageError('E_CLOSED', 'output is already finished', { file: this.path });
    return this.#handle;
  }

  async write(data: Uint8Array): Promise<void> {
    await writeFully(this.handle(), data, this.#position, this.role);
    this.#position += data.length;
    this.#end = Math.max(this.#end, this.#position);
  }

  async skip(length: number): Promise<void> {
    this.handle();
    this.#position += length;
  }

  async pwrite(data: Uint8Array, position: number): Promise<void> {
    await writeFully(this.handle(), data, position, this.role);
    this.#end = Math.max(this.#end, position + data.length);
  }

  async commit(): Promise<void> {
    const h = this.handle();
    try {
      // A trailing skip leaves a hole; the file must still be as long as the output.
      if (this.#position > this.#end) await h.truncate(this.#position);
      if (this.sync) await h.sync();
    } catch (err) {
      throw writeError(err, this.role);
    }
    await h.close();
    this.#handle = undefined;
    await rename(this.tempPath, this.path);
    this.#done = true;
    activeSinks.delete(this);
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    activeSinks.delete(this);
    const h = this.#handle;
    this.#handle = undefined;
    await h?.close().catch(() => undefined);
    await rm(this.tempPath, { force: true });
  }

  /** Synchronous last-chance clean-up (process exit on a signal). */
  abortSync(): void {
    if (this.#done) return;
    this.#done = true;
    try {
      rmSync(this.tempPath);
    } catch {
      // already gone
    }
  }
}

const activeSinks = new Set<FileSink>();

/** Remove every unfinished output file (called on SIGINT/SIGTERM by the CLI). */
export function abortAllSinksSync(): void {
  for (const s of activeSinks) s.abortSync();
  activeSinks.clear();
}

/** A non-seekable stream (stdout): holes are written as zeros, nothing can be patched. */
export class StreamSink implements Sink {
  readonly seekable = false;
  #position = 0;
  readonly stream: Writable;

  constructor(stream: Writable) {
    this.stream = stream;
  }

  get position(): number {
    return this.#position;
  }

  write(data: Uint8Array): Promise<void> {
    this.#position += data.length;
    // A stream may hold on to a chunk after write() returns (a pipe's queue, a collector),
    // and writers reuse their buffers once this resolves: hand it a copy.
    const chunk = Buffer.from(data);
    return new Promise((resolve, reject) => {
      if (this.stream.write(chunk)) resolve();
      else {
        const onDrain = (): void => {
          this.stream.off('error', onError);
          resolve();
        };
        const onError = (err: Error): void => {
          this.stream.off('drain', onDrain);
          reject(err);
        };
        this.stream.once('drain', onDrain);
        this.stream.once('error', onError);
      }
    });
  }

  async skip(length: number): Promise<void> {
    for (let left = length; left > 0; left -= ZEROS.length) {
      await this.write(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
    }
  }

  pwrite(): Promise<void> {
    return Promise.reject(new ImageError('E_UNSUPPORTED', 'this output is a stream and cannot be patched; write to a file'));
  }

  async commit(): Promise<void> {
    if (this.stream === process.stdout) return;
    await new Promise<void>((resolve, reject) => this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }

  async abort(): Promise<void> {
    if (this.stream !== process.stdout) this.stream.destroy();
  }
}

/**
 * Gathers small appends (compressed clusters, grain markers) into large writes: one
 * system call per `size` bytes instead of one per cluster. A `pwrite`, `skip` or `commit`
 * first writes out what is gathered, so the bytes and their order are the inner sink's.
 */
export class CoalescingSink implements Sink {
  readonly inner: Sink;
  readonly #buffer: Uint8Array;
  #used = 0;

  constructor(inner: Sink, size = 1024 * 1024) {
    this.inner = inner;
    this.#buffer = alignedBytes(size);
  }

  get seekable(): boolean {
    return this.inner.seekable;
  }

  get position(): number {
    return this.inner.position + this.#used;
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.#used + data.length > this.#buffer.length) await this.flush();
    if (data.length >= this.#buffer.length) {
      await this.inner.write(data);
      return;
    }
    this.#buffer.set(data, this.#used);
    this.#used += data.length;
  }

  async skip(length: number): Promise<void> {
    await this.flush();
    await this.inner.skip(length);
  }

  async pwrite(data: Uint8Array, position: number): Promise<void> {
    await this.flush();
    await this.inner.pwrite(data, position);
  }

  /** Write out what is gathered. */
  async flush(): Promise<void> {
    if (this.#used === 0) return;
    const n = this.#used;
    this.#used = 0;
    await this.inner.write(this.#buffer.subarray(0, n));
  }

  async commit(): Promise<void> {
    await this.flush();
    await this.inner.commit();
  }

  abort(): Promise<void> {
    this.#used = 0;
    return this.inner.abort();
  }
}

/** A sink that keeps everything in memory: for tests and small headers. */
export class MemorySink implements Sink {
  readonly seekable = true;
  #position = 0;
  #bytes = new Uint8Array(0);
  #length = 0;
  committed = false;

  get position(): number {
    return this.#position;
  }

  /** The output so far. */
  get bytes(): Uint8Array {
    return this.#bytes.subarray(0, Math.max(this.#length, this.#position));
  }

  private ensure(end: number): void {
    if (end <= this.#bytes.length) return;
    const grown = new Uint8Array(Math.max(end, this.#bytes.length * 2));
    grown.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = grown;
  }

  async write(data: Uint8Array): Promise<void> {
    await this.pwrite(data, this.#position);
    this.#position += data.length;
  }

  async skip(length: number): Promise<void> {
    this.ensure(this.#position + length);
    this.#position += length;
  }

  async pwrite(data: Uint8Array, position: number): Promise<void> {
    this.ensure(position + data.length);
    this.#bytes.set(data, position);
    this.#length = Math.max(this.#length, position + data.length);
  }

  async commit(): Promise<void> {
    this.ensure(this.#position);
    this.committed = true;
  }

  async abort(): Promise<void> {
    this.#bytes = new Uint8Array(0);
    this.#length = 0;
    this.#position = 0;
  }
}

/**
 * A sink that hands every call to `inner`: the base of the wrappers that change one or two
 * things (what is counted, how it is finished, where it is staged).
 */
export class ForwardingSink implements Sink {
  constructor(protected readonly inner: Sink) {}
  get seekable(): boolean {
    return this.inner.seekable;
  }
  get position(): number {
    return this.inner.position;
  }
  write(data: Uint8Array): Promise<void> {
    return this.inner.write(data);
  }
  skip(length: number): Promise<void> {
    return this.inner.skip(length);
  }
  pwrite(data: Uint8Array, position: number): Promise<void> {
    return this.inner.pwrite(data, position);
  }
  commit(): Promise<void> {
    return this.inner.commit();
  }
  abort(): Promise<void> {
    return this.inner.abort();
  }
}

/**
 * A sink that counts the bytes of data written through it: the one count of bytes written
 * a writer reports. Holes and the zeros a stream writes for them (`skip`) are not data and
 * are not counted.
 */
export class CountingSink extends ForwardingSink {
  written = 0;
  constructor(readonly sink: Sink) {
    super(sink);
  }
  override async write(data: Uint8Array): Promise<void> {
    this.written += data.length;
    await this.sink.write(data);
  }
  override async pwrite(data: Uint8Array, at: number): Promise<void> {
    this.written += data.length;
    await this.sink.pwrite(data, at);
  }
  override skip(n: number): Promise<void> {
    return n > 0 ? this.sink.skip(n) : Promise.resolve();
  }
  /** Pad with zeros (a hole on files) up to byte `at`. */
  padTo(at: number): Promise<void> {
    return this.skip(at - this.sink.position);
  }
}
