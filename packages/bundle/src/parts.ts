import { createHash, type Hash } from 'node:crypto';

/** Where a bundle's files go: a local directory, or S3 objects. */
export interface BundleDestination {
  /** A human name for messages: the directory or the s3:// URL. */
  readonly location: string;
  /** Start a part; its bytes are written in order, then `end` stores it. */
  openPart(name: string): Promise<PartWriter>;
  /** Store the manifest, last; returns where it is (a path or URL). */
  writeManifest(name: string, text: string): Promise<string>;
  /** Everything is stored: make it visible (a directory renames its staged files). */
  commit(): Promise<void>;
  /** Remove what was stored so far. */
  abort(): Promise<void>;
}

export interface PartWriter {
  write(data: Uint8Array): Promise<void>;
  end(): Promise<void>;
}

export interface PartRecord {
  readonly index: number;
  readonly filename: string;
  readonly size: number;
  /** Hex SHA-1 of the part. */
  readonly digest: string;
}

/** The name euca2ools gives part `index`: `<prefix>.part.NN`, at least two digits. */
export function partName(prefix: string, index: number): string {
  return `${prefix}.part.${String(index).padStart(2, '0')}`;
}

/**
 * Cuts the encrypted stream into parts of exactly `partSize` bytes, hashing each on the
 * way. A part is opened as soon as the previous one is full, so a stream whose length is
 * a multiple of the part size ends with a 0-byte part, as euca2ools writes it.
 */
export class PartSplitter {
  readonly parts: PartRecord[] = [];
  readonly #dest: BundleDestination;
  readonly #prefix: string;
  readonly #partSize: number;
  #current: { writer: PartWriter; hash: Hash; size: number } | undefined;
  #total = 0;

  constructor(dest: BundleDestination, prefix: string, partSize: number) {
    this.#dest = dest;
    this.#prefix = prefix;
    this.#partSize = partSize;
  }

  get bytes(): number {
    return this.#total;
  }

  async write(data: Uint8Array): Promise<void> {
    let i = 0;
    while (i < data.length) {
      const part = this.#current ?? (await this.#open());
      const n = Math.min(this.#partSize - part.size, data.length - i);
      const piece = data.subarray(i, i + n);
      part.hash.update(piece);
      await part.writer.write(piece);
      part.size += n;
      this.#total += n;
      i += n;
      if (part.size === this.#partSize) {
        await this.#close();
        await this.#open();
      }
    }
  }

  async end(): Promise<void> {
    if (!this.#current) await this.#open();
    await this.#close();
  }

  async #open(): Promise<{ writer: PartWriter; hash: Hash; size: number }> {
    const writer = await this.#dest.openPart(partName(this.#prefix, this.parts.length));
    this.#current = { writer, hash: createHash('sha1'), size: 0 };
    return this.#current;
  }

  async #close(): Promise<void> {
    const part = this.#current!;
    this.#current = undefined;
    await part.writer.end();
    const index = this.parts.length;
    this.parts.push({ index, filename: partName(this.#prefix, index), size: part.size, digest: part.hash.digest('hex') });
  }
}
