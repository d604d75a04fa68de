import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { FileSink, ImageError, makeTempDir, removeTempDir, type Sink } from '@amitrans/block';
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
 * image is written to a sparse local temporary, then uploaded on commit. The object
 * still appears only when the upload completes; the temporary is removed either way.
 */
export class SpooledS3Sink implements Sink {
  readonly seekable = true;
  /** The key, as writers that name the output inside it read it (like FileSink.path). */
  readonly path: string;
  readonly #file: FileSink;
  readonly #dir: string;
  readonly #name: string;
  readonly #o: S3SinkOptions;
  #upload: S3Sink | undefined;
  /** The sha256 of what was uploaded, when asked for with the `sha256` option. */
  sha256: string | undefined;

  readonly #hash: boolean;

  private constructor(file: FileSink, dir: string, name: string, o: S3SinkOptions & { sha256?: boolean }) {
    this.#hash = o.sha256 === true;
    this.path = parseRemote(name).kind === 's3' ? name.replace(/^s3:\/\/[^/]+\//i, '') : name;
    this.#file = file;
    this.#dir = dir;
    this.#name = name;
    this.#o = o;
  }

  static async create(name: string, o: S3SinkOptions & { sha256?: boolean } = {}): Promise<SpooledS3Sink> {
    parseRemote(name);
    const dir = await makeTempDir('s3-spool');
    try {
      return new SpooledS3Sink(await FileSink.create(join(dir, 'image'), { sync: false }), dir, name, o);
    } catch (err) {
      await removeTempDir(dir);
      throw err;
    }
  }

  get position(): number {
    return this.#file.position;
  }
  write(data: Uint8Array): Promise<void> {
    return this.#file.write(data);
  }
  skip(length: number): Promise<void> {
    return this.#file.skip(length);
  }
  pwrite(data: Uint8Array, position: number): Promise<void> {
    return this.#file.pwrite(data, position);
  }

  async commit(): Promise<void> {
    try {
      await this.#file.commit();
      this.#upload = s3Sink(this.#name, { ...this.#o, sha256: false, expectedSize: this.#file.position });
      this.#o.meter?.uploading(this.#file.position);
      const hash = this.#hash ? createHash('sha256') : undefined;
      for await (const chunk of createReadStream(this.#file.path, { highWaterMark: 4 * 1024 * 1024 })) {
        hash?.update(chunk as Buffer);
        await this.#upload.write(chunk as Buffer);
      }
      await this.#upload.commit();
      this.sha256 = hash?.digest('hex');
    } catch (err) {
      await this.#upload?.abort();
      throw err;
    } finally {
      await removeTempDir(this.#dir);
    }
  }

  async abort(): Promise<void> {
    await this.#file.abort();
    await this.#upload?.abort();
    await removeTempDir(this.#dir);
  }
}
