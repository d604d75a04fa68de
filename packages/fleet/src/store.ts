import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, createReadStream, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { isRemote, loadS3Sdk, parseRemote, s3Client, s3Error, S3Sink, withRetry, type RemoteOptions, type S3Sdk } from '@amitrans/remote';
import { onInterrupt, partialName, removeStalePartials } from '@amitrans/block';
import { FleetError } from './errors.js';

/** A delivered object: what the result record says about it. */
export interface StoredObject {
  size: number;
  sha256: string;
}

/**
 * Where a fleet run keeps what it makes: outputs under images/, one result record per image
 * under results/ (the journal: a rerun reads it to skip what is done), the event log, and the
 * report. A local directory or an s3:// prefix; every object appears whole or not at all.
 */
export interface FleetStore {
  /** The store as the user named it (no secrets). */
  readonly name: string;
  /** Size of an object, or undefined when it does not exist. */
  size(key: string): Promise<number | undefined>;
  /** sha256 of an existing object, read back. */
  sha256(key: string): Promise<string>;
  /** Put a finished local file under `key`, atomically (a directory store moves it; S3 uploads a copy). */
  deliver(file: string, key: string, signal?: AbortSignal, sha256?: string): Promise<StoredObject>;
  putText(key: string, text: string): Promise<void>;
  getText(key: string): Promise<string | undefined>;
  /** Keys under a prefix (a "directory" ending in /). */
  list(prefix: string): Promise<string[]>;
  /** One line of the event log (who delivered what, when): appended, never rewritten. */
  appendEvent(event: Record<string, unknown>): Promise<void>;
  /** The local path of a key, when the store is a directory (verify boots it in place). */
  localPath(key: string): string | undefined;
  /** Where a writer that stores by itself (a bundle) puts `key`: a local path or an s3:// URL. */
  location(key: string): string;
  /** How a report next to the results links to the key. */
  link(key: string): string;
}

export function openStore(where: string, remote: RemoteOptions = {}): FleetStore {
  if (isRemote(where)) {
    const loc = parseRemote(where);
    if (loc.kind !== 's3') throw new FleetError('E_USAGE', `--out ${where}: outputs go to a directory or an s3:// prefix`);
    return new S3Store(loc.bucket, loc.key.replace(/\/+$/, ''), remote);
  }
  return new DirStore(where);
}

class DirStore implements FleetStore {
  readonly name: string;

  constructor(readonly root: string) {
    this.name = root;
  }

  #path(key: string): string {
    return join(this.root, ...key.split('/'));
  }

  async size(key: string): Promise<number | undefined> {
    const s = await stat(this.#path(key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    return s?.size;
  }

  async sha256(key: string): Promise<string> {
    const hash = createHash('sha256');
    await pipeline(createReadStream(this.#path(key)), hash);
    return hash.digest('hex');
  }

  async deliver(file: string, key: string, _signal?: AbortSignal, known?: string): Promise<StoredObject> {
    const final = this.#path(key);
    await mkdir(dirname(final), { recursive: true });
    const size = (await stat(file)).size;
    // The writer hashed what it wrote; a rename moves those very bytes.
    const sha256 = known ?? (await hashFile(file));
    try {
      await rename(file, final);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      // Another filesystem: copy beside the destination, then the one atomic rename.
      await viaPartial(final, (part) => copyFile(file, part));
    }
    return { size, sha256 };
  }

  async putText(key: string, text: string): Promise<void> {
    const final = this.#path(key);
    await removeStalePartials(final);
    writeTextSync(final, text);
  }

  async getText(key: string): Promise<string | undefined> {
    return readFile(this.#path(key), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
  }

  async list(prefix: string): Promise<string[]> {
    const dir = this.#path(prefix);
    const names = await readdir(dir, { recursive: true, withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    return names
      .filter((d) => d.isFile())
      .map((d) => relative(this.root, join(d.parentPath, d.name)).split(sep).join('/'))
      // Unfinished files and a bundle's staging directory are not objects yet.
      .filter((key) => !key.split('/').some((part) => part.endsWith('.partial')))
      .sort();
  }

  async appendEvent(event: Record<string, unknown>): Promise<void> {
    // Synchronous, like putText. One write of one short line with O_APPEND: lines from
    // concurrent workers never interleave.
    mkdirSync(this.root, { recursive: true });
    appendFileSync(join(this.root, 'journal.jsonl'), `${JSON.stringify(event)}\n`);
  }

  localPath(key: string): string {
    return this.#path(key);
  }

  location(key: string): string {
    return this.#path(key);
  }

  link(key: string): string {
    return key;
  }
}

class S3Store implements FleetStore {
  readonly name: string;
  #client: Promise<S3Client> | undefined;

  constructor(readonly bucket: string, readonly prefix: string, private readonly remote: RemoteOptions) {
    this.name = `s3://${bucket}${prefix ? `/${prefix}` : ''}`;
  }

  /** The client and the SDK's commands, loaded on first use (no other command pays for the SDK). */
  async #s3(): Promise<{ client: S3Client; sdk: S3Sdk }> {
    this.#client ??= s3Client(this.remote);
    const [client, sdk] = await Promise.all([this.#client, loadS3Sdk()]);
    return { client, sdk };
  }

  #key(key: string): string {
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  #url(key: string): string {
    return `s3://${this.bucket}/${this.#key(key)}`;
  }

  async size(key: string): Promise<number | undefined> {
    return withRetry(this.#url(key), async () => {
      const { client, sdk } = await this.#s3();
      try {
        const head = await client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.#key(key) }));
        return head.ContentLength ?? 0;
      } catch (err) {
        const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
        if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return undefined;
        throw s3Error(err, this.#url(key));
      }
    });
  }

  async sha256(key: string): Promise<string> {
    return withRetry(this.#url(key), async () => {
      const hash = createHash('sha256');
      const { client, sdk } = await this.#s3();
      const got = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.#key(key) })).catch((err: unknown) => {
        throw s3Error(err, this.#url(key));
      });
      await pipeline(got.Body as Readable, hash);
      return hash.digest('hex');
    });
  }

  async deliver(file: string, key: string, signal?: AbortSignal, known?: string): Promise<StoredObject> {
    const size = (await stat(file)).size;
    // A multipart upload: the object appears on completion only, and is aborted on failure or SIGINT.
    const { client } = await this.#s3();
    const sink = new S3Sink(this.bucket, this.#key(key), { ...this.remote, client, expectedSize: size, sha256: true, ...(signal ? { signal } : {}) });
    try {
      for await (const chunk of createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) {
        signal?.throwIfAborted();
        await sink.write(chunk as Buffer);
      }
      await sink.commit();
    } catch (err) {
      await sink.abort();
      throw err;
    }
    // What was uploaded is what the writer wrote, or the upload is not the output.
    if (known !== undefined && known !== sink.sha256) throw new Error(`${this.#url(key)}: uploaded sha256 ${sink.sha256} differs from the output's ${known}`);
    // The staged file stays for verify; its temporary directory goes with the image.
    return { size, sha256: sink.sha256! };
  }

  async putText(key: string, text: string): Promise<void> {
    const { client, sdk } = await this.#s3();
    await withRetry(this.#url(key), async () => {
      await client.send(new sdk.PutObjectCommand({ Bucket: this.bucket, Key: this.#key(key), Body: Buffer.from(text), ContentType: contentType(key) })).catch((err: unknown) => {
        throw s3Error(err, this.#url(key));
      });
    });
  }

  async getText(key: string): Promise<string | undefined> {
    const { client, sdk } = await this.#s3();
    return withRetry(this.#url(key), async () => {
      try {
        const got = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.#key(key) }));
        return await got.Body!.transformToString('utf8');
      } catch (err) {
        const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
        if (e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return undefined;
        throw s3Error(err, this.#url(key));
      }
    });
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    const base = this.prefix ? `${this.prefix}/` : '';
    const { client, sdk } = await this.#s3();
    do {
      const page = await withRetry(this.#url(prefix), () =>
        client.send(new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${base}${prefix}`, ...(token ? { ContinuationToken: token } : {}) })).catch((err: unknown) => {
          throw s3Error(err, this.#url(prefix));
        }));
      for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key.slice(base.length));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  async appendEvent(event: Record<string, unknown>): Promise<void> {
    // Objects cannot be appended to: one small object per event, named so they list in time order.
    const name = `journal/${new Date().toISOString()}-${randomBytes(4).toString('hex')}.json`;
    await this.putText(name, `${JSON.stringify(event)}\n`);
  }

  localPath(): undefined {
    return undefined;
  }

  location(key: string): string {
    return this.#url(key);
  }

  link(key: string): string {
    return key;
  }
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

function contentType(key: string): string {
  if (key.endsWith('.html')) return 'text/html; charset=utf-8';
  if (key.endsWith('.json') || key.endsWith('.jsonl')) return 'application/json';
  return 'application/octet-stream';
}

/**
 * A record, a change report, the report: small text written synchronously, through a partial
 * renamed when complete. A few syscalls, where each await would wait its turn behind the
 * other lanes' translations on this event loop: the fleet's journal time per image fell from
 * about 100 ms (a dozen awaits on a loaded 2-core machine) to a few ms (issue 18's bench).
 * No signal can come between the write and the rename, so only an error leaves a partial to remove.
 */
function writeTextSync(final: string, text: string): void {
  mkdirSync(dirname(final), { recursive: true });
  const part = partialName(final, randomBytes(6).toString('hex'));
  try {
    writeFileSync(part, text);
    renameSync(part, final);
  } catch (err) {
    rmSync(part, { force: true });
    throw err;
  }
}

/**
 * Write `final` through a partial beside it, renamed when complete. The partial is removed
 * on error and also when a signal stops the run mid-write (a finally block never runs then);
 * one a killed writer (SIGKILL) left is removed by the next write of the same key, as the
 * file sink does.
 */
async function viaPartial(final: string, write: (part: string) => Promise<void>): Promise<void> {
  await removeStalePartials(final);
  const part = partialName(final, randomBytes(6).toString('hex'));
  const unregister = onInterrupt(() => rm(part, { force: true }));
  try {
    await write(part);
    await rename(part, final);
  } finally {
    unregister();
    await rm(part, { force: true });
  }
}
