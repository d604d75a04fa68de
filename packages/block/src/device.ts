import { ImageError } from './errors.js';

/**
 * What a range of a device holds:
 * - data: may hold non-zero bytes; must be read to be known;
 * - zero: allocated (or known) but reads as zeros, e.g. a qcow2 zero cluster;
 * - unallocated: not stored at all; reads as zeros.
 */
export type ExtentKind = 'data' | 'zero' | 'unallocated';

export interface Extent {
  readonly offset: number;
  readonly length: number;
  readonly kind: ExtentKind;
}

export interface Range {
  readonly offset: number;
  readonly length: number;
}

/**
 * The one model every image speaks: a virtual size, positional reads (and writes, when
 * writable), and a cheap allocation map.
 *
 * `extents(range)` yields sorted, contiguous, non-overlapping extents that exactly cover
 * the range (the whole device by default). Neighbours may share a kind; use
 * `mergeExtents` to coalesce.
 */
export interface BlockDevice {
  readonly size: number;
  readonly writable: boolean;
  /** Fill `buffer` from `position`; the whole range must lie inside the device. */
  read(buffer: Uint8Array, position: number): Promise<void>;
  write(buffer: Uint8Array, position: number): Promise<void>;
  extents(range?: Range): AsyncIterable<Extent>;
  close(): Promise<void>;
}

export const MAX_SIZE = Number.MAX_SAFE_INTEGER;

export function checkSize(size: number, structure = 'device'): number {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new ImageError(Number.isInteger(size) && size > 0 ? 'E_TOO_LARGE' : 'E_BAD_OFFSET',
      `size ${size} is not a whole number of bytes between 0 and 2^53`, { structure });
  }
  return size;
}

/** Validate that [position, position + length) is a sane range inside a device of `size` bytes. */
export function checkRange(position: number, length: number, size: number, structure = 'device'): void {
  if (!Number.isSafeInteger(position) || position < 0) {
    throw new ImageError(position > MAX_SIZE ? 'E_TOO_LARGE' : 'E_BAD_OFFSET',
      `offset ${position} is not a whole number of bytes between 0 and 2^53`, { structure });
  }
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new ImageError('E_BAD_OFFSET', `length ${length} is not a whole number of bytes`, { structure });
  }
  if (position + length > size) {
    throw new ImageError('E_OUT_OF_RANGE',
      `range ${position}+${length} ends past the end of the ${size}-byte ${structure}`,
      { structure, offset: position });
  }
}

export function wholeRange(size: number, range?: Range, structure = 'device'): Range {
  if (range === undefined) return { offset: 0, length: size };
  checkRange(range.offset, range.length, size, structure);
  return range;
}

/**
 * The checks every device needs (bounds, read-only, closed), so a concrete device only
 * implements the unchecked `_read`/`_write`/`_extents`.
 */
export abstract class BaseDevice implements BlockDevice {
  readonly size: number;
  readonly writable: boolean;
  protected readonly kindName: string;
  #closed = false;

  protected constructor(size: number, writable: boolean, kindName: string) {
    this.size = checkSize(size, kindName);
    this.writable = writable;
    this.kindName = kindName;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async read(buffer: Uint8Array, position: number): Promise<void> {
    this.assertOpen();
    checkRange(position, buffer.length, this.size, this.kindName);
    if (buffer.length > 0) await this._read(buffer, position);
  }

  async write(buffer: Uint8Array, position: number): Promise<void> {
    this.assertOpen();
    if (!this.writable) throw new ImageError('E_READ_ONLY', `this ${this.kindName} is read-only`);
    checkRange(position, buffer.length, this.size, this.kindName);
    if (buffer.length > 0) await this._write(buffer, position);
  }

  async *extents(range?: Range): AsyncIterable<Extent> {
    this.assertOpen();
    const r = wholeRange(this.size, range, this.kindName);
    if (r.length > 0) yield* this._extents(r);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this._close();
  }

  protected assertOpen(): void {
    if (this.#closed) throw new ImageError('E_CLOSED', `this ${this.kindName} is closed`);
  }

  protected abstract _read(buffer: Uint8Array, position: number): Promise<void>;

  protected _write(_buffer: Uint8Array, _position: number): Promise<void> {
    return Promise.reject(new ImageError('E_READ_ONLY', `this ${this.kindName} cannot be written`));
  }

  /** Default map: everything may hold data. */
  protected async *_extents(range: Range): AsyncIterable<Extent> {
    yield { offset: range.offset, length: range.length, kind: 'data' };
  }

  protected async _close(): Promise<void> {}
}
