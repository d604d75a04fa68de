import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { ImageError } from '@amitrans/block';
import { readBody, type ObjectHead, type RangeSource } from './source.js';
import { describeError, isTransient, TransientError } from './retry.js';
import { loadS3Sdk } from './sdk.js';
import { certificateError } from './tls.js';

/** How to reach S3 beyond what the AWS environment and config files say. */
export interface S3Options {
  /** An S3-compatible endpoint (MinIO, Ceph, Walrus); else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL / AWS. */
  readonly endpoint?: string | undefined;
  /** Address buckets in the path (http://host/bucket/key). Default: on when an endpoint is set. */
  readonly pathStyle?: boolean | undefined;
  /** A request or body silent this long is retried. Default 30 s. */
  readonly idleMs?: number | undefined;
}

/**
 * An S3 client configured the AWS way (the SDK's default chain: environment, shared
 * config and credentials files, AWS_PROFILE, SSO, container and instance roles). The
 * SDK's own retries are off: ours resume broken bodies too, and one budget covers both.
 * Checksums only when the API requires them: since 3.729 the SDK otherwise sends
 * aws-chunked bodies with a CRC32 trailer, which S3-compatible servers that do not
 * decode them store as part of the object (fleet.md §3.3). Asynchronous because the SDK
 * is loaded on first use (see loadS3Sdk).
 */
export async function s3Client(o: S3Options = {}): Promise<S3Client> {
  const { S3Client } = await loadS3Sdk();
  // The SDK warns on Node 20 that releases after January 2027 need Node 22; this one is
  // pinned for Node 20 (fleet.md 3.3), so the warning would only be noise on every run.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const endpoint = o.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  const config: S3ClientConfig = {
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    forcePathStyle: o.pathStyle ?? endpoint !== undefined,
  };
  if (o.endpoint !== undefined) config.endpoint = o.endpoint;
  // A region is required to sign, though S3-compatible servers ignore it.
  if (!process.env.AWS_REGION && !process.env.AWS_DEFAULT_REGION && !process.env.AWS_PROFILE && endpoint !== undefined) config.region = 'us-east-1';
  return new S3Client(config);
}

export function s3Name(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

/** What an S3 error means for us: transient (retry), the object changed, or final. */
export function s3Error(err: unknown, name: string, offset?: number): Error {
  const tls = certificateError(err, name);
  if (tls) return tls;
  if (isTransient(err)) return err instanceof Error ? err : new TransientError(String(err));
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (e.name === 'PreconditionFailed' || status === 412) {
    return new ImageError('E_CHANGED', 'the object changed while it was being read (its ETag no longer matches)', { file: name, ...(offset !== undefined ? { offset } : {}) });
  }
  if (e.name === 'NoSuchKey' || e.name === 'NotFound' || status === 404) return new ImageError('E_IO', 'no such object', { file: name, cause: err });
  if (e.name === 'NoSuchBucket') return new ImageError('E_IO', 'no such bucket', { file: name, cause: err });
  return new ImageError('E_IO', describeError(err), { file: name, cause: err });
}

/** An S3 object read by ranged GetObject calls pinned to its ETag with If-Match. */
export class S3Source implements RangeSource {
  readonly name: string;
  readonly #o: S3Options & { client?: S3Client };
  readonly #idleMs: number;
  #client: Promise<S3Client> | undefined;

  constructor(readonly bucket: string, readonly key: string, o: S3Options & { client?: S3Client } = {}) {
    this.name = s3Name(bucket, key);
    this.#o = o;
    this.#idleMs = o.idleMs ?? 30_000;
  }

  /** The client, made (and the SDK loaded) on the first request. */
  #connect(): Promise<S3Client> {
    this.#client ??= this.#o.client ? Promise.resolve(this.#o.client) : s3Client(this.#o);
    return this.#client;
  }

  async head(): Promise<ObjectHead> {
    try {
      const [client, { HeadObjectCommand }] = await Promise.all([this.#connect(), loadS3Sdk()]);
      const h = await client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key }));
      const size = h.ContentLength;
      if (size === undefined || !Number.isSafeInteger(size) || size < 0) {
        throw new ImageError('E_UNSUPPORTED', 'the server did not give the object size', { file: this.name });
      }
      return { size, ...(h.ETag ? { version: h.ETag } : {}) };
    } catch (err) {
      throw err instanceof ImageError ? err : s3Error(err, this.name);
    }
  }

  async get(offset: number, into: Uint8Array, version: string | undefined, progress: { received: number }): Promise<void> {
    let body: (AsyncIterable<Uint8Array> & { destroy?: (err?: Error) => void }) | undefined;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new TransientError(`no answer for ${this.#idleMs / 1000} s`)), this.#idleMs);
    try {
      const [client, { GetObjectCommand }] = await Promise.all([this.#connect(), loadS3Sdk()]);
      const res = await client.send(new GetObjectCommand({
        Bucket: this.bucket,
        Key: this.key,
        Range: `bytes=${offset}-${offset + into.length - 1}`,
        ...(version ? { IfMatch: version } : {}),
      }), { abortSignal: abort.signal });
      clearTimeout(timer);
      body = res.Body as typeof body;
      // A server that ignores If-Match must still not hand us bytes of another version.
      if (version && res.ETag && res.ETag !== version) {
        throw new ImageError('E_CHANGED', 'the object changed while it was being read (its ETag no longer matches)', { file: this.name, offset });
      }
      const start = /^bytes (\d+)-/.exec(res.ContentRange ?? '');
      if (!body || (start && Number(start[1]) !== offset) || (!start && offset !== 0)) {
        throw new ImageError('E_CORRUPT', `the server answered range ${res.ContentRange ?? '(none)'} for byte ${offset}`, { file: this.name, offset });
      }
      await readBody(body, into, progress, this.#idleMs);
    } catch (err) {
      body?.destroy?.();
      if (err instanceof ImageError || err instanceof TransientError) throw err;
      if (abort.signal.aborted) throw abort.signal.reason as Error;
      throw s3Error(err, this.name, offset);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.#o.client === undefined) await this.#client?.then((c) => c.destroy(), () => undefined);
  }
}
