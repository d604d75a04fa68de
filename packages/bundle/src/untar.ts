import { ImageError, isZero } from '@amitrans/block';
import { BLOCK, headerChecksumOk, readNumber } from './tar.js';

/** Where the first member of a tar stream goes. */
export interface ExtractTarget {
  /** Once, before any data: the member's name and its full (unpacked) size. */
  begin(name: string, size: number): Promise<void>;
  /** Member bytes at `position`, ascending; ranges never written read as zeros. */
  write(data: Uint8Array, position: number): Promise<void>;
}

interface SparseChunk {
  offset: number;
  length: number;
}

const STRUCTURE = 'tar stream';
/** A GNU long name or a pax header bigger than this is not a bundle's. */
const MAX_META = 1024 * 1024;
/** Old-GNU sparse maps: 16 bytes per entry in memory, so a few million entries at most. */
const MAX_SPARSE_ENTRIES = 4 * 1024 * 1024;

type State = 'header' | 'meta' | 'sparse-ext' | 'data' | 'drain';

/**
 * Extracts the first member of a tar stream pushed through it in pieces, as euca2ools and
 * ec2-unbundle do: a regular member ('0', NUL or '7'), or an old-GNU sparse member ('S',
 * what `tar -S` writes in GNU format) with its extension headers. GNU long names ('L') and
 * pax headers before it are read for the name. Whatever follows the member is only
 * counted: the caller hashes the whole stream.
 */
export class TarExtractor {
  readonly #target: ExtractTarget;
  #state: State = 'header';
  #block = new Uint8Array(BLOCK);
  #blockUsed = 0;
  /** Stream offset of the next byte pushed. */
  #at = 0;
  #meta: { kind: number; left: number; parts: Uint8Array[]; padded: number } | undefined;
  #longName: string | undefined;
  #name = '';
  #realSize = 0;
  #sparse: SparseChunk[] = [];
  #chunk = 0;
  #chunkDone = 0;
  #dataLeft = 0;
  #found = false;

  constructor(target: ExtractTarget) {
    this.#target = target;
  }

  /** Bytes of the stream seen so far. */
  get length(): number {
    return this.#at;
  }

  async push(data: Uint8Array): Promise<void> {
    let i = 0;
    while (i < data.length) {
      if (this.#state === 'drain') {
        this.#at += data.length - i;
        return;
      }
      if (this.#state === 'data') {
        const n = Math.min(this.#dataLeft, data.length - i);
        await this.#emit(data.subarray(i, i + n));
        i += n;
        this.#at += n;
        this.#dataLeft -= n;
        if (this.#dataLeft === 0) this.#state = 'drain';
        continue;
      }
      const n = Math.min(BLOCK - this.#blockUsed, data.length - i);
      this.#block.set(data.subarray(i, i + n), this.#blockUsed);
      this.#blockUsed += n;
      i += n;
      this.#at += n;
      if (this.#blockUsed === BLOCK) {
        this.#blockUsed = 0;
        await this.#onBlock(this.#block, this.#at - BLOCK);
      }
    }
  }

  /** The stream is over: the member must have been complete. */
  async end(): Promise<void> {
    if (this.#state === 'drain') return;
    if (!this.#found && this.#state === 'header' && this.#blockUsed === 0) {
      throw new ImageError('E_TRUNCATED', 'the tar stream ends before its first member', { structure: STRUCTURE, offset: this.#at });
    }
    throw new ImageError('E_TRUNCATED', `the tar stream ends inside member ${JSON.stringify(this.#name)}`, { structure: STRUCTURE, offset: this.#at });
  }

  async #onBlock(h: Uint8Array, offset: number): Promise<void> {
    if (this.#state === 'meta') return this.#onMetaBlock(h);
    if (this.#state === 'sparse-ext') return this.#onSparseExt(h, offset);
    if (isZero(h)) throw new ImageError('E_CORRUPT', 'the tar stream holds no member (end-of-archive block first)', { structure: STRUCTURE, offset });
    if (!headerChecksumOk(h)) throw new ImageError('E_BAD_CHECKSUM', 'tar header checksum does not match', { structure: 'tar header', offset });
    const type = h[156]!;
    const size = readNumber(h, 124, 12, 'tar header', offset);
    const c = String.fromCharCode(type);
    if (c === 'L' || c === 'x' || c === 'g' || c === 'K') {
      if (size > MAX_META) throw new ImageError('E_TOO_LARGE', `a '${c}' header of ${size} bytes is beyond ${MAX_META}`, { structure: 'tar header', offset });
      this.#meta = { kind: type, left: size, parts: [], padded: Math.ceil(size / BLOCK) * BLOCK };
      this.#state = size === 0 ? 'header' : 'meta';
      return;
    }
    this.#name = this.#longName ?? cString(h.subarray(0, 100));
    if (c === '0' || c === '\0' || c === '7') return this.#beginMember(size, size, [{ offset: 0, length: size }]);
    if (c === 'S') return this.#beginSparse(h, size, offset);
    throw new ImageError('E_UNSUPPORTED', `the first tar member ${JSON.stringify(this.#name)} is of type '${c}', not a file`, { structure: 'tar header', offset });
  }

  #onMetaBlock(h: Uint8Array): void {
    const m = this.#meta!;
    m.parts.push(h.slice(0, Math.min(BLOCK, m.left)));
    m.left = Math.max(0, m.left - BLOCK);
    m.padded -= BLOCK;
    if (m.padded > 0) return;
    const text = Buffer.concat(m.parts);
    if (m.kind === 0x4c) this.#longName = cString(text);
    else if (m.kind === 0x78) {
      const path = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(text.toString('utf8'));
      if (path) this.#longName = path[1];
    }
    this.#meta = undefined;
    this.#state = 'header';
  }

  async #beginSparse(h: Uint8Array, stored: number, offset: number): Promise<void> {
    const chunks = readSparseEntries(h, 386, 4, offset);
    const realSize = readNumber(h, 483, 12, 'tar sparse header', offset);
    this.#sparse = chunks;
    this.#realSize = realSize;
    this.#dataLeft = stored;
    if (h[482] !== 0) {
      this.#state = 'sparse-ext';
      return;
    }
    await this.#beginMember(stored, realSize, chunks);
  }

  async #onSparseExt(h: Uint8Array, offset: number): Promise<void> {
    const more = readSparseEntries(h, 0, 21, offset);
    if (this.#sparse.length + more.length > MAX_SPARSE_ENTRIES) {
      throw new ImageError('E_TOO_LARGE', `the sparse map has more than ${MAX_SPARSE_ENTRIES} entries`, { structure: 'tar sparse header', offset });
    }
    this.#sparse.push(...more);
    if (h[504] !== 0) return;
    await this.#beginMember(this.#dataLeft, this.#realSize, this.#sparse);
  }

  async #beginMember(stored: number, realSize: number, chunks: SparseChunk[]): Promise<void> {
    checkSparseMap(chunks, stored, realSize, this.#at);
    this.#found = true;
    this.#sparse = chunks.filter((c) => c.length > 0);
    this.#chunk = 0;
    this.#chunkDone = 0;
    this.#dataLeft = stored;
    this.#realSize = realSize;
    await this.#target.begin(this.#name, realSize);
    this.#state = stored === 0 ? 'drain' : 'data';
  }

  /** Hand stored bytes to the target at their places in the member. */
  async #emit(data: Uint8Array): Promise<void> {
    let i = 0;
    while (i < data.length) {
      const c = this.#sparse[this.#chunk]!;
      const n = Math.min(c.length - this.#chunkDone, data.length - i);
      await this.#target.write(data.subarray(i, i + n), c.offset + this.#chunkDone);
      i += n;
      this.#chunkDone += n;
      if (this.#chunkDone === c.length) {
        this.#chunk++;
        this.#chunkDone = 0;
      }
    }
  }
}

function readSparseEntries(h: Uint8Array, at: number, count: number, offset: number): SparseChunk[] {
  const out: SparseChunk[] = [];
  for (let i = 0; i < count; i++) {
    const p = at + i * 24;
    if (h[p] === 0) break;
    out.push({ offset: readNumber(h, p, 12, 'tar sparse map', offset), length: readNumber(h, p + 12, 12, 'tar sparse map', offset) });
  }
  return out;
}

/** Sparse chunks ascend, do not overlap, fit the member, and add up to the stored bytes. */
function checkSparseMap(chunks: readonly SparseChunk[], stored: number, realSize: number, offset: number): void {
  let end = 0;
  let total = 0;
  for (const c of chunks) {
    if (c.offset < end || c.offset + c.length > realSize) {
      throw new ImageError('E_CORRUPT', `sparse chunk ${c.offset}+${c.length} overlaps or lies past the ${realSize}-byte member`, { structure: 'tar sparse map', offset });
    }
    end = c.offset + c.length;
    total += c.length;
  }
  if (total !== stored) {
    throw new ImageError('E_CORRUPT', `the sparse map holds ${total} bytes but the member stores ${stored}`, { structure: 'tar sparse map', offset });
  }
}

function cString(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return Buffer.from(nul < 0 ? b : b.subarray(0, nul)).toString('utf8');
}
