import { createHash, type Hash } from 'node:crypto';
import { ForwardingSink, ImageError, SpooledSink } from '@amitrans/block';
import { RemoteDevice, type RemoteDeviceOptions } from './device.js';
import { HttpSource } from './http.js';
import { S3Source, type S3Options } from './s3.js';
import { S3Sink, type S3SinkOptions } from './upload.js';
import { parseRemote } from './url.js';

/** Everything a command needs to reach remote images: S3 endpoint and addressing, tuning. */
export type RemoteOptions = S3Options & RemoteDeviceOptions;

/** Open an s3:// or http(s):// URL as a read-only block device. */
export async function openRemote(name: string, o: RemoteOptions = {}): Promise<RemoteDevice> {
  const where = parseRemote(name);
  const source = where.kind === 's3' ? new S3Source(where.bucket, where.key, o) : new HttpSource(where.url, o);
  try {
    return await RemoteDevice.open(source, o);
  } catch (err) {
    await source.close();
    throw err;
  }
}

/** A streaming S3 output (writers that append only). */
export function s3Sink(name: string, o: S3SinkOptions = {}): S3Sink {
  const where = parseRemote(name);
  if (where.kind !== 's3') throw new ImageError('E_USAGE', `cannot write to ${name}: only s3:// outputs can be written`);
  return new S3Sink(where.bucket, where.key, o);
}

/**
 * An S3 output for writers that must seek back (qcow2, VDI, VMDK monolithicSparse): the
 * image is written to a sparse local temporary, then uploaded on commit (block's
 * SpooledSink). The object still appears only when the upload completes; the temporary
 * is removed either way.
 */
export class SpooledS3Sink extends ForwardingSink {
  /** The key, as writers that name the output inside it read it (like FileSink.path). */
  readonly path: string;
  readonly #hash: Hash | undefined;
  /** The sha256 of what was uploaded, when asked for with the `sha256` option. */
  sha256: string | undefined;

  private constructor(name: string, spool: SpooledSink, hash: Hash | undefined) {
    super(spool);
    this.path = parseRemote(name).kind === 's3' ? name.replace(/^s3:\/\/[^/]+\//i, '') : name;
    this.#hash = hash;
  }

  static async create(name: string, o: S3SinkOptions & { sha256?: boolean } = {}): Promise<SpooledS3Sink> {
    parseRemote(name);
    const hash = o.sha256 === true ? createHash('sha256') : undefined;
    const upload = (size: number): S3Sink => {
      const sink = s3Sink(name, { ...o, sha256: false, expectedSize: size });
      o.meter?.uploading(size);
      return sink;
    };
    return new SpooledS3Sink(name, await SpooledSink.create(upload, hash ? { copied: (chunk) => hash.update(chunk) } : {}), hash);
  }

  override async commit(): Promise<void> {
    await this.inner.commit();
    this.sha256 = this.#hash?.digest('hex');
  }
}
