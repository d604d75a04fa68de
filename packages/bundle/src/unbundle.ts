import { createDecipheriv, createHash, type Decipher, type KeyObject } from 'node:crypto';
import { createGunzip, type Gunzip } from 'node:zlib';
import { ImageError, type ProgressOptions } from '@amitrans/block';
import { unwrapHex, verifyHex, type BundleKey } from './keys.js';
import type { Manifest, ParsedManifest } from './manifest.js';
import { TarExtractor, type ExtractTarget } from './untar.js';

/** Where the parts a manifest names are read from: a directory, or S3 objects. */
export interface PartSource {
  /** Where a part is, for messages (a path or URL). */
  location(name: string): string;
  /** The part's bytes, in order. A missing part is an ImageError naming it. */
  read(name: string): AsyncIterable<Uint8Array>;
}

export interface UnbundleOptions extends ProgressOptions {
  /** The user's (or the cloud's) private key: it unwraps the AES key and IV. */
  readonly privateKey?: KeyObject | undefined;
  /** The key and IV, when known already (instead of a private key). */
  readonly key?: BundleKey | undefined;
  /** When given, the manifest's signature must verify with it. */
  readonly cert?: KeyObject | undefined;
}

export interface UnbundleResult {
  readonly name: string;
  readonly size: number;
  readonly digest: string;
  readonly parts: number;
  readonly bundledSize: number;
  /** Which wrapped key opened the bundle. */
  readonly keyFrom: 'user' | 'ec2' | 'given';
  readonly signature: 'verified' | 'not checked';
  readonly warnings: string[];
}

/** The AES key and IV out of the manifest: the user's copy first, then the cloud's (euca2ools' order). */
export function unwrapBundleKey(m: Manifest, key: KeyObject): { key: BundleKey; from: 'user' | 'ec2' } {
  for (const from of ['user', 'ec2'] as const) {
    const wrappedKey = from === 'user' ? m.userEncryptedKey : m.ec2EncryptedKey;
    const wrappedIv = from === 'user' ? m.userEncryptedIv : m.ec2EncryptedIv;
    if (wrappedKey === '' || wrappedIv === '') continue;
    const k = unwrapHex(wrappedKey, key, `${from}_encrypted_key`);
    if (k === undefined) continue;
    const iv = unwrapHex(wrappedIv, key, `${from}_encrypted_iv`);
    if (iv === undefined) {
      throw new ImageError('E_BAD_KEY', `the private key opens <${from}_encrypted_key> but not <${from}_encrypted_iv>`, { structure: `manifest <${from}_encrypted_iv>` });
    }
    return { key: { key: k, iv }, from };
  }
  throw new ImageError('E_BAD_KEY', 'the private key opens neither <user_encrypted_key> nor <ec2_encrypted_key>: it is not the key of the user or cloud certificate the bundle was made for',
    { structure: 'manifest <user_encrypted_key>' });
}

/**
 * Unbundle in one pass: each part's SHA-1 is checked as it streams, then AES-128-CBC,
 * gunzip, the tar stream's SHA-1 and length, and the first member to `target`. A part
 * that does not match its digest is reported as such even when the damage upsets the
 * stages after it first.
 */
export async function unbundle(parsed: ParsedManifest, source: PartSource, target: ExtractTarget, options: UnbundleOptions): Promise<UnbundleResult> {
  const m = parsed.manifest;
  const signature = checkSignature(parsed, options.cert);
  let keyFrom: UnbundleResult['keyFrom'] = 'given';
  let key = options.key;
  if (!key) {
    if (!options.privateKey) throw new ImageError('E_USAGE', 'unbundling needs the private key of the user or the cloud (--privatekey)');
    const opened = unwrapBundleKey(m, options.privateKey);
    key = opened.key;
    keyFrom = opened.from;
  }
  let size = -1;
  const extractor = new TarExtractor({
    begin: async (name, realSize) => {
      size = realSize;
      if (realSize !== m.size) {
        throw new ImageError('E_CORRUPT', `the tar member ${JSON.stringify(name)} is ${realSize} bytes but the manifest's <size> is ${m.size}`, { structure: 'manifest <size>' });
      }
      await target.begin(name, realSize);
    },
    write: (data, position) => target.write(data, position),
  });
  const down = new Downstream(key, extractor);
  let at = 0;
  for (const part of m.parts) {
    options.signal?.throwIfAborted();
    const start = at;
    const hash = createHash('sha1');
    let failure: unknown;
    for await (const chunk of source.read(part.filename)) {
      hash.update(chunk);
      at += chunk.length;
      if (failure === undefined) await down.push(chunk).catch((err: unknown) => (failure = err));
      options.progress?.(at, m.bundledSize);
    }
    const got = hash.digest('hex');
    if (got !== part.digest) {
      throw new ImageError('E_BAD_CHECKSUM', `part ${part.index} has SHA-1 ${got}, the manifest says ${part.digest}`,
        { file: source.location(part.filename), structure: `part ${part.filename} (bundle bytes ${start}-${at})`, offset: start });
    }
    if (failure !== undefined) throw inPart(failure, part.filename, start);
  }
  try {
    await down.end();
    await extractor.end();
  } catch (err) {
    throw inPart(err, m.parts[m.parts.length - 1]!.filename, at);
  }
  const digest = down.digest();
  if (digest !== m.digest) {
    throw new ImageError('E_BAD_CHECKSUM', `the tar stream has SHA-1 ${digest}, the manifest says ${m.digest}`, { structure: 'manifest <digest>' });
  }
  const warnings = at !== m.bundledSize ? [`the parts hold ${at} bytes; the manifest's <bundled_size> says ${m.bundledSize}`] : [];
  return { name: m.name, size, digest, parts: m.parts.length, bundledSize: at, keyFrom, signature, warnings };
}

function checkSignature(parsed: ParsedManifest, cert: KeyObject | undefined): UnbundleResult['signature'] {
  if (!cert) return 'not checked';
  const sig = parsed.manifest.signature;
  if (sig === 'UNSIGNED' || sig === '') throw new ImageError('E_BAD_KEY', 'the manifest is not signed', { structure: 'manifest <signature>' });
  if (!verifyHex(parsed.signedText, sig, cert)) {
    throw new ImageError('E_BAD_KEY', 'the signature does not verify with the certificate over <machine_configuration> and <image>', { structure: 'manifest <signature>' });
  }
  return 'verified';
}

/** A failure of a stage after the part check, said in terms of the bundle. */
function inPart(err: unknown, filename: string, offset: number): unknown {
  if (err instanceof ImageError) return err;
  const e = err as NodeJS.ErrnoException;
  const what = e.code?.startsWith('ERR_OSSL') || /decrypt|bad decrypt/i.test(e.message)
    ? 'AES decryption failed (wrong key or damaged data)'
    : e.code?.startsWith('Z_') || e.errno !== undefined ? `gunzip failed: ${e.message}` : e.message;
  return new ImageError('E_CORRUPT', what, { structure: `bundle stream after part ${filename}`, offset, cause: err });
}

/** AES -> gunzip -> SHA-1 of the tar stream -> the tar extractor, with backpressure. */
class Downstream {
  readonly #decipher: Decipher;
  readonly #gunzip: Gunzip;
  readonly #tarHash = createHash('sha1');
  readonly #consumer: Promise<void>;
  #error: unknown;

  constructor(key: BundleKey, extractor: TarExtractor) {
    this.#decipher = createDecipheriv('aes-128-cbc', Buffer.from(key.key, 'hex'), Buffer.from(key.iv, 'hex'));
    const gunzip = createGunzip({ chunkSize: 1024 * 1024 });
    this.#gunzip = gunzip;
    this.#consumer = (async () => {
      for await (const chunk of gunzip as AsyncIterable<Buffer>) {
        this.#tarHash.update(chunk);
        await extractor.push(chunk);
      }
    })();
    this.#consumer.catch((err: unknown) => {
      this.#error ??= err;
    });
  }

  async push(data: Uint8Array): Promise<void> {
    await this.#write(this.#decipher.update(data));
  }

  async end(): Promise<void> {
    await this.#write(this.#decipher.final());
    this.#gunzip.end();
    await this.#consumer;
  }

  digest(): string {
    return this.#tarHash.digest('hex');
  }

  async #write(data: Uint8Array): Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    if (data.length === 0) return;
    if (!this.#gunzip.write(data)) {
      await new Promise<void>((resolve) => {
        this.#gunzip.once('drain', resolve);
        this.#consumer.then(resolve, resolve);
      });
    }
    if (this.#error !== undefined) throw this.#error;
  }
}
