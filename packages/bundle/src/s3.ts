import type { ObjectCannedACL, S3Client } from '@aws-sdk/client-s3';
import { ImageError, onInterrupt } from '@amitrans/block';
import { loadS3Sdk, openRemote, s3Client, s3Error, withRetry, type RemoteOptions, type S3Options, type S3Sdk } from '@amitrans/remote';
import { MAX_MANIFEST_BYTES, type ParsedManifest } from './manifest.js';
import { parseManifest } from './manifest-parse.js';
import type { BundleDestination, PartWriter } from './parts.js';
import type { PartSource } from './unbundle.js';

/** euca-upload-bundle's --acl choices; aws-exec-read (the default) lets the cloud read the bundle. */
export const BUNDLE_ACLS = ['aws-exec-read', 'public-read', 'ec2-bundle-read'] as const;
export type BundleAcl = (typeof BUNDLE_ACLS)[number];
/** Parts are held in memory while they upload: larger ones belong on disk first. */
export const MAX_S3_PART = 256 * 1024 * 1024;

/** s3://bucket[/prefix]: a bucket and a key prefix ('' or ending in '/'). */
export function parseBundleUrl(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/i.exec(url);
  if (!m || m[1] === '') throw new ImageError('E_USAGE', `'${url}' is not s3://bucket[/prefix]`);
  const rest = (m[2] ?? '').replace(/\/+$/, '');
  return { bucket: m[1]!, prefix: rest === '' ? '' : `${rest}/` };
}

export interface S3DestinationOptions extends S3Options {
  readonly acl?: BundleAcl;
  /** Parts uploading while the next one fills (euca2ools' --max-pending-parts). Default 2. */
  readonly pendingParts?: number;
  /** Create the bucket when it does not exist (as euca-upload-bundle does). Default true. */
  readonly createBucket?: boolean;
  readonly client?: S3Client;
  readonly signal?: AbortSignal | undefined;
}

/**
 * A bundle uploaded as euca-upload-bundle does: each part a PUT of `<prefix><part>` with
 * the canned ACL, then the manifest, last. Parts are held in memory only (nothing on local
 * disk); a failure or SIGINT deletes the parts already stored, so no bundle is left half.
 */
export class S3Destination implements BundleDestination {
  readonly location: string;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #client: S3Client;
  readonly #own: boolean;
  readonly #o: S3DestinationOptions;
  /** The AWS SDK, loaded by `create` (only bundles that go to S3 load it). */
  readonly #sdk: S3Sdk;
  readonly #stored: string[] = [];
  readonly #pending = new Set<Promise<void>>();
  #failure: unknown;
  #done = false;
  readonly #unregister: () => void;

  private constructor(url: string, o: S3DestinationOptions, sdk: S3Sdk, client: S3Client) {
    const { bucket, prefix } = parseBundleUrl(url);
    this.#sdk = sdk;
    this.location = `s3://${bucket}/${prefix}`;
    this.#bucket = bucket;
    this.#prefix = prefix;
    this.#o = o;
    this.#own = o.client === undefined;
    this.#client = client;
    this.#unregister = onInterrupt(() => this.abort());
  }

  static async create(url: string, o: S3DestinationOptions = {}): Promise<S3Destination> {
    parseBundleUrl(url);
    const [sdk, client] = await Promise.all([loadS3Sdk(), o.client ?? s3Client(o)]);
    const d = new S3Destination(url, o, sdk, client);
    try {
      await d.#ensureBucket();
    } catch (err) {
      await d.abort();
      throw err;
    }
    return d;
  }

  url(name: string): string {
    return `s3://${this.#bucket}/${this.#prefix}${name}`;
  }

  async #ensureBucket(): Promise<void> {
    const name = `s3://${this.#bucket}`;
    const { HeadBucketCommand, CreateBucketCommand } = this.#sdk;
    try {
      await withRetry(name, () => this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket })), { signal: this.#o.signal });
      return;
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const missing = status === 404 || (err as { name?: string }).name === 'NotFound' || (err as { name?: string }).name === 'NoSuchBucket';
      if (!missing || this.#o.createBucket === false) throw err instanceof ImageError ? err : s3Error(err, name);
    }
    try {
      await withRetry(name, () => this.#client.send(new CreateBucketCommand({ Bucket: this.#bucket })), { signal: this.#o.signal });
    } catch (err) {
      throw err instanceof ImageError ? err : s3Error(err, name);
    }
  }

  async #put(name: string, body: Uint8Array, contentType?: string): Promise<void> {
    const key = `${this.#prefix}${name}`;
    const { PutObjectCommand } = this.#sdk;
    try {
      await withRetry(this.url(name), () => this.#client.send(new PutObjectCommand({
        Bucket: this.#bucket,
        Key: key,
        Body: body,
        ContentLength: body.length,
        ACL: (this.#o.acl ?? 'aws-exec-read') as ObjectCannedACL,
        ...(contentType ? { ContentType: contentType } : {}),
      })), { signal: this.#o.signal });
    } catch (err) {
      throw err instanceof ImageError ? err : s3Error(err, this.url(name));
    }
    this.#stored.push(key);
  }

  async openPart(name: string): Promise<PartWriter> {
    this.#check();
    const chunks: Uint8Array[] = [];
    let size = 0;
    return {
      write: async (data) => {
        size += data.length;
        if (size > MAX_S3_PART) throw new ImageError('E_USAGE', `parts of more than ${MAX_S3_PART} bytes are not uploaded from memory; use a smaller --part-size`);
        chunks.push(Buffer.from(data));
      },
      end: async () => {
        // At most `pendingParts` uploads run while the next part fills.
        while (this.#pending.size >= (this.#o.pendingParts ?? 2)) await Promise.race(this.#pending);
        this.#check();
        const job = this.#put(name, Buffer.concat(chunks, size)).catch((err: unknown) => {
          this.#failure ??= err;
        });
        this.#pending.add(job);
        void job.finally(() => this.#pending.delete(job));
      },
    };
  }

  async writeManifest(name: string, text: string): Promise<string> {
    await Promise.all(this.#pending);
    this.#check();
    await this.#put(name, Buffer.from(text, 'latin1'), 'text/xml');
    return this.url(name);
  }

  async commit(): Promise<void> {
    this.#done = true;
    this.#unregister();
    if (this.#own) this.#client.destroy();
  }

  /** Delete what was stored: a bundle is there whole or not at all. */
  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    this.#unregister();
    await Promise.allSettled(this.#pending);
    for (const key of this.#stored.splice(0)) {
      await this.#client.send(new this.#sdk.DeleteObjectCommand({ Bucket: this.#bucket, Key: key })).catch(() => undefined);
    }
    if (this.#own) this.#client.destroy();
  }

  #check(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }
}

/** Read a manifest from S3 (at most 5 MiB, as Eucalyptus fetches it). */
export async function readManifestS3(url: string, o: RemoteOptions = {}): Promise<ParsedManifest> {
  const dev = await openRemote(url, o);
  try {
    if (dev.size > MAX_MANIFEST_BYTES) throw new ImageError('E_TOO_LARGE', `a manifest of ${dev.size} bytes is beyond ${MAX_MANIFEST_BYTES}`, { file: url });
    const bytes = new Uint8Array(dev.size);
    await dev.read(bytes, 0);
    return parseManifest(bytes);
  } catch (err) {
    throw err instanceof ImageError ? err.inFile(url) : err;
  } finally {
    await dev.close();
  }
}

/** Parts next to an S3 manifest, each streamed by ranged GETs with retries. */
export class S3PartSource implements PartSource {
  readonly #base: string;
  readonly #o: RemoteOptions;

  constructor(manifestUrl: string, o: RemoteOptions = {}) {
    this.#base = manifestUrl.slice(0, manifestUrl.lastIndexOf('/') + 1);
    this.#o = o;
  }

  location(name: string): string {
    return `${this.#base}${name}`;
  }

  async *read(name: string): AsyncIterable<Uint8Array> {
    const url = this.location(name);
    let dev;
    try {
      dev = await openRemote(url, this.#o);
    } catch (err) {
      if (err instanceof ImageError && /no such object/.test(err.message)) {
        throw new ImageError('E_TRUNCATED', 'the part is missing', { file: url, structure: `part ${name}`, cause: err });
      }
      throw err;
    }
    try {
      const chunk = new Uint8Array(1024 * 1024);
      for (let at = 0; at < dev.size; at += chunk.length) {
        const piece = chunk.subarray(0, Math.min(chunk.length, dev.size - at));
        await dev.read(piece, at);
        yield piece;
      }
    } finally {
      await dev.close();
    }
  }
}
