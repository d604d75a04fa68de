import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { ImageError, trackChild, type FormatDriver, type Sink } from '@amitrans/block';
import { writableDrivers } from './formats.js';
import { sevenZipPath } from './decompress.js';

/** Compressors for a deliverable: gzip through node's zlib, bzip2 and xz through 7-Zip. */
export type OutputCompression = 'gzip' | 'bzip2' | 'xz';

const EXTENSIONS: Record<string, OutputCompression> = { gz: 'gzip', gzip: 'gzip', bz2: 'bzip2', bzip2: 'bzip2', xz: 'xz' };

export interface OutputPlan {
  /** The output name without its compression suffix: what names the container format. */
  baseName: string;
  compression?: OutputCompression;
  /** Format options without `compress`. */
  options: Record<string, string>;
}

/**
 * Whether an output is to be compressed: `-o compress=gzip|bzip2|xz`, else a name ending
 * in .gz, .bz2 or .xz (`x.vhd.bz2` is a bzip2-compressed VHD). Other `compress` values
 * stay with the format: qcow2's `compress=on` means compressed clusters.
 */
export function planOutput(output: string, options: Readonly<Record<string, string>> = {}): OutputPlan {
  const m = /\.([A-Za-z0-9]+)$/.exec(output);
  const fromName = m ? EXTENSIONS[m[1]!.toLowerCase()] : undefined;
  const baseName = fromName ? output.slice(0, -m![0].length) : output;
  const wanted = options.compress === undefined ? undefined : EXTENSIONS[options.compress.toLowerCase()];
  if (wanted) {
    const { compress: _taken, ...rest } = options;
    return { baseName, compression: wanted, options: rest };
  }
  return fromName ? { baseName, compression: fromName, options: { ...options } } : { baseName, options: { ...options } };
}

/** Refuse compression of formats that are not delivered that way, before anything is written. */
export function checkCompressible(driver: FormatDriver, compression: OutputCompression | undefined): void {
  if (compression && !driver.compressible) {
    const which = writableDrivers().filter((d) => d.compressible).map((d) => d.name);
    throw new ImageError('E_UNSUPPORTED', `${compression} compression applies to ${which.join(' and ')} outputs, not ${driver.name}`);
  }
}

/** Where the compressor's output goes: the real sink, with its backpressure. */
function sinkWriter(inner: Sink): Writable {
  return new Writable({
    highWaterMark: 4 * 1024 * 1024,
    write(chunk: Buffer, _enc, done) {
      inner.write(chunk).then(() => done(), done);
    },
  });
}

/**
 * A Sink that compresses everything written to it into another sink. It is a stream (not
 * seekable): writers write holes as zeros, which compress to almost nothing. `commit`
 * flushes the compressor and commits the inner sink; `abort` stops the compressor and
 * aborts the inner sink, so nothing is left at the destination.
 */
export class CompressingSink implements Sink {
  readonly seekable = false;
  #position = 0;
  #failed: unknown;
  private readonly zeros = new Uint8Array(1024 * 1024);

  private constructor(
    readonly compression: OutputCompression,
    private readonly inner: Sink,
    private readonly input: Writable,
    private readonly done: Promise<void>,
    private readonly child?: ChildProcess,
  ) {
    done.catch((err: unknown) => (this.#failed = err));
  }

  static async create(inner: Sink, compression: OutputCompression): Promise<CompressingSink> {
    if (compression === 'gzip') {
      const gzip = createGzip({ level: 6, chunkSize: 1024 * 1024 });
      return new CompressingSink(compression, inner, gzip, pipeline(gzip, sinkWriter(inner)));
    }
    const bin = await sevenZipPath();
    // 7-Zip as a filter: -si reads stdin, -so writes the compressed stream to stdout.
    const child = spawn(bin, ['a', `-t${compression}`, '-si', '-so', '-bd', 'dummy'], { stdio: ['pipe', 'pipe', 'pipe'] });
    trackChild(child);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const exited = new Promise<void>((resolve, reject) => {
      child.on('error', (err) => reject(new ImageError('E_IO', `cannot run 7-Zip for ${compression}: ${err.message}`, { cause: err })));
      child.on('close', (code, signal) => {
        if (code === 0) resolve();
        else reject(new ImageError('E_IO', `7-Zip ${compression} compression failed (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n').slice(-2).join(' ')}`));
      });
    });
    const done = Promise.all([pipeline(child.stdout as Readable, sinkWriter(inner)), exited]).then(() => undefined);
    // A child that dies early makes stdin writes fail with EPIPE; `done` reports why.
    child.stdin!.on('error', () => undefined);
    return new CompressingSink(compression, inner, child.stdin!, done, child);
  }

  get position(): number {
    return this.#position;
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.#failed !== undefined) throw this.#failed;
    this.#position += data.length;
    // Copy: writers reuse their buffers, and the compressor may hold this one for a while.
    if (!this.input.write(Buffer.from(data))) {
      await Promise.race([once(this.input, 'drain'), this.done.then(() => undefined)]);
      if (this.#failed !== undefined) throw this.#failed;
    }
  }

  async skip(length: number): Promise<void> {
    for (let left = length; left > 0; left -= this.zeros.length) await this.write(this.zeros.subarray(0, Math.min(left, this.zeros.length)));
  }

  pwrite(): Promise<void> {
    return Promise.reject(new ImageError('E_UNSUPPORTED', 'a compressed output is a stream and cannot be patched'));
  }

  async commit(): Promise<void> {
    this.input.end();
    await this.done;
    await this.inner.commit();
  }

  async abort(): Promise<void> {
    this.child?.kill('SIGKILL');
    this.input.destroy();
    await this.done.catch(() => undefined);
    await this.inner.abort();
  }
}
