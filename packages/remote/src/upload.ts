import type { CompletedPart, S3Client } from '@aws-sdk/client-s3';
import { createHash, type Hash } from 'node:crypto';
import { ImageError, onInterrupt, type Sink } from '@amitrans/block';
import { describeError, withRetry, type RetryOptions } from './retry.js';
import { s3Client, s3Error, s3Name, type S3Options } from './s3.js';
import { loadS3Sdk, type S3Sdk } from './sdk.js';
import type { TransferMeter } from './meter.js';
import { boundYoungGeneration } from './heap.js';

/** S3's limits on multipart uploads. */
export const MAX_PARTS = 10_000;
export const MIN_PART = 5 * 1024 * 1024;
export const MAX_PART = 5 * 1024 * 1024 * 1024;
const MIB = 1024 * 1024;

/**
 * Parts held by uploads at once: the writer waits while this many are in flight, so one
 * part uploads while the next fills. Each holds a part (8 MiB for outputs up to 70 GiB)
 * until the server has it, and a whole s3 -> s3 conversion must stay under 200 MiB (issue
 * 15); on the bench a conversion fills a part more slowly than 127.0.0.1 takes it.
 */
const PARTS_IN_FLIGHT = 2;

export interface S3SinkOptions extends S3Options, RetryOptions {
  /** About how many bytes will be written: sizes the parts so they stay under 10,000. */
  readonly expectedSize?: number;
  /** Parts uploading at once (each holds one part in memory). Default PARTS_IN_FLIGHT. */
  readonly partsInFlight?: number;
  readonly client?: S3Client;
  /** Where a failed abort is reported (default: stderr). */
  readonly warn?: (message: string) => void;
  /** Counts bytes sent. */
  readonly onBytes?: (n: number) => void;
  /** Counts bytes sent, for the command's report and progress. */
  readonly meter?: TransferMeter;
  /** Hash what is uploaded: `sha256` is set on commit. */
  readonly sha256?: boolean;
}

/**
 * The size of the first part: at least 8 MiB, and large enough that `expected` bytes fit
 * in 9,000 parts (a margin for outputs a little larger than expected). Parts double every
 * 2,000 parts after that, so even an output far larger than expected fits in 10,000.
 */
export function firstPartSize(expected = 0): number {
  const need = Math.ceil(expected / (MAX_PARTS - 1000) / MIB) * MIB;
  return Math.min(MAX_PART, Math.max(8 * MIB, need));
}

export function partSizeFor(partNumber: number, first: number): number {
  return Math.min(MAX_PART, first * 2 ** Math.floor((partNumber - 1) / 2000));
}

/**
 * An S3 object written as a multipart upload, streaming: parts are uploaded as they fill,
 * a bounded number at a time. Atomic like FileSink: the object appears only when
 * CompleteMultipartUpload succeeds in `commit()`; `abort()` (also run on SIGINT) aborts
 * the upload so no parts are left. An output smaller than one part is a single PutObject.
 */
export class S3Sink implements Sink {
  readonly seekable = false;
  readonly name: string;
  /** The key, as writers that name the output inside it (a VMDK's extent line) read it. */
  readonly path: string;
  /** Made (and the SDK loaded) on the first call. */
  #client: Promise<S3Client> | undefined;
  readonly #o: S3SinkOptions;
  readonly #firstPart: number;
  #uploadId: string | undefined;
  #partNumber = 1;
  #buffer: Buffer;
  /** Part buffers whose upload finished, to fill again: a new 8 MiB buffer per part would wait for the collector. */
  readonly #spare: Buffer[] = [];
  #used = 0;
  #position = 0;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #parts: CompletedPart[] = [];
  #failure: unknown;
  #done = false;
  readonly #unregister: () => void;
  readonly #hash: Hash | undefined;
  /** The sha256 of the object, after commit, when asked for with the `sha256` option. */
  sha256: string | undefined;

  constructor(readonly bucket: string, readonly key: string, o: S3SinkOptions = {}) {
    boundYoungGeneration();
    this.name = s3Name(bucket, key);
    this.path = key;
    this.#o = o;
    this.#firstPart = firstPartSize(o.expectedSize);
    this.#buffer = Buffer.allocUnsafe(this.#firstPart);
    this.#unregister = onInterrupt(() => this.abort());
    this.#hash = o.sha256 ? createHash('sha256') : undefined;
  }

  get position(): number {
    return this.#position;
  }

  /** Parts uploaded or uploading. */
  get parts(): number {
    return this.#partNumber - 1;
  }

  async write(data: Uint8Array): Promise<void> {
    this.#check();
    for (let at = 0; at < data.length; ) {
      const n = Math.min(data.length - at, this.#buffer.length - this.#used);
      this.#buffer.set(data.subarray(at, at + n), this.#used);
      this.#used += n;
      this.#position += n;
      at += n;
      if (this.#used === this.#buffer.length) await this.#sendPart();
    }
  }

  async skip(length: number): Promise<void> {
    // An object has no holes: a skip is zeros, written part by part.
    for (let left = length; left > 0; ) {
      this.#check();
      const n = Math.min(left, this.#buffer.length - this.#used);
      this.#buffer.fill(0, this.#used, this.#used + n);
      this.#used += n;
      this.#position += n;
      left -= n;
      if (this.#used === this.#buffer.length) await this.#sendPart();
    }
  }

  pwrite(): Promise<void> {
    return Promise.reject(new ImageError('E_UNSUPPORTED', 'an S3 upload is written in order and cannot be patched', { file: this.name }));
  }

  async commit(): Promise<void> {
    this.#check();
    try {
      if (this.#uploadId === undefined) {
        await this.#putWhole();
      } else {
        if (this.#used > 0) await this.#sendPart();
        await Promise.all(this.#inFlight);
        this.#check();
        this.#parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
        const uploadId = this.#uploadId;
        await withRetry(this.name, () => this.#call((c, sdk) => c.send(new sdk.CompleteMultipartUploadCommand({
          Bucket: this.bucket, Key: this.key, UploadId: uploadId, MultipartUpload: { Parts: this.#parts },
        }))), this.#o);
      }
      this.#done = true;
      this.sha256 = this.#hash?.digest('hex');
      await this.#finish();
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    this.#failure ??= new ImageError('E_IO', 'the upload was aborted', { file: this.name });
    await Promise.allSettled(this.#inFlight);
    const uploadId = this.#uploadId;
    if (uploadId !== undefined) {
      try {
        await withRetry(this.name, () => this.#call((c, sdk) => c.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: uploadId }))), { ...this.#o, signal: undefined, attempts: 3 });
      } catch (err) {
        // Some servers (s3rver) answer 405: the object still never appears; say what is left.
        (this.#o.warn ?? defaultWarn)(`warning: ${this.name}: could not abort multipart upload ${uploadId} (${describeError(err)}); ` +
          'no object was written, but its parts may stay until a lifecycle rule removes them');
      }
    }
    await this.#finish();
  }

  async #finish(): Promise<void> {
    this.#unregister();
    if (this.#o.client === undefined) await this.#client?.then((c) => c.destroy(), () => undefined);
  }

  #check(): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#done) throw new ImageError('E_CLOSED', 'output is already finished', { file: this.name });
  }

  /** One S3 call, its error turned into ours (transient ones stay retryable). */
  async #call<T>(fn: (client: S3Client, sdk: S3Sdk) => Promise<T>): Promise<T> {
    try {
      this.#client ??= this.#o.client ? Promise.resolve(this.#o.client) : s3Client(this.#o);
      const [client, sdk] = await Promise.all([this.#client, loadS3Sdk()]);
      return await fn(client, sdk);
    } catch (err) {
      throw s3Error(err, this.name);
    }
  }

  async #putWhole(): Promise<void> {
    const body = this.#buffer.subarray(0, this.#used);
    this.#hash?.update(body);
    await withRetry(this.name, () => this.#call((c, sdk) => c.send(new sdk.PutObjectCommand({ Bucket: this.bucket, Key: this.key, Body: body, ContentLength: body.length }))), this.#o);
    this.#o.onBytes?.(body.length);
    this.#o.meter?.sent(body.length);
  }

  /** Hand the filled buffer to an upload and start a new one, waiting while too many are in flight. */
  async #sendPart(): Promise<void> {
    if (this.#uploadId === undefined) {
      const created = await withRetry(this.name, () => this.#call((c, sdk) => c.send(new sdk.CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.key }))), this.#o);
      if (!created.UploadId) throw new ImageError('E_IO', 'the server gave no upload id', { file: this.name });
      this.#uploadId = created.UploadId;
    }
    if (this.#partNumber > MAX_PARTS) throw new ImageError('E_TOO_LARGE', `the output needs more than ${MAX_PARTS} parts`, { file: this.name });
    const partNumber = this.#partNumber++;
    const full = this.#buffer;
    const body = full.subarray(0, this.#used);
    this.#hash?.update(body);
    const nextSize = partSizeFor(this.#partNumber, this.#firstPart);
    const spare = this.#spare.pop();
    this.#buffer = spare?.length === nextSize ? spare : Buffer.allocUnsafe(nextSize);
    this.#used = 0;
    const uploadId = this.#uploadId;
    const task = withRetry(this.name, () => this.#call((c, sdk) => c.send(new sdk.UploadPartCommand({
      Bucket: this.bucket, Key: this.key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length,
    }))), this.#o).then((res) => {
      this.#parts.push({ PartNumber: partNumber, ETag: res.ETag });
      this.#o.onBytes?.(body.length);
      this.#o.meter?.sent(body.length);
    }, (err: unknown) => {
      this.#failure ??= err;
    });
    const tracked: Promise<void> = task.finally(() => {
      this.#inFlight.delete(tracked);
      // Settled, retries included: nothing reads this part's bytes any more.
      this.#spare.push(full);
    });
    this.#inFlight.add(tracked);
    while (this.#inFlight.size >= (this.#o.partsInFlight ?? PARTS_IN_FLIGHT)) await Promise.race(this.#inFlight);
    this.#check();
  }
}

function defaultWarn(message: string): void {
  process.stderr.write(`${message}\n`);
}
