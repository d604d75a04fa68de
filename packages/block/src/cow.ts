import { BaseDevice, type BlockDevice, type Extent, type Range } from './device.js';
import { ImageError } from './errors.js';

export interface CowOverlayOptions {
  /** Bytes per overlay chunk; a write dirties whole chunks. Default 64 KiB. */
  chunkSize?: number;
  /** Close the base when the overlay is closed. Default false: the caller owns the base. */
  owns?: boolean;
}

/**
 * A writable view of a read-only device: writes land in fixed-size chunks kept in memory,
 * reads merge them over the base. The base is never written, so the input image stays
 * byte-identical whatever the guest edits do.
 */
export class CowOverlay extends BaseDevice {
  readonly base: BlockDevice;
  readonly chunkSize: number;
  private readonly chunks = new Map<number, Uint8Array>();
  private readonly owns: boolean;
  /** dirtyRanges() until a chunk is added (extents asks for it on every call). */
  #dirty: Range[] | undefined;

  constructor(base: BlockDevice, options: CowOverlayOptions = {}) {
    super(base.size, true, 'copy-on-write overlay');
    const chunkSize = options.chunkSize ?? 64 * 1024;
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 512 || chunkSize > 64 * 1024 * 1024) {
      throw new ImageError('E_BAD_OFFSET', `chunk size ${chunkSize} must be a whole number between 512 and 64 MiB`);
    }
    this.base = base;
    this.chunkSize = chunkSize;
    this.owns = options.owns ?? false;
  }

  /** Bytes held in memory by the overlay. */
  get dirtyBytes(): number {
    let n = 0;
    for (const c of this.chunks.values()) n += c.length;
    return n;
  }

  /** The ranges written so far, sorted and merged. */
  dirtyRanges(): Range[] {
    if (this.#dirty) return [...this.#dirty];
    const out: Range[] = [];
    for (const i of [...this.chunks.keys()].sort((a, b) => a - b)) {
      const offset = i * this.chunkSize;
      const length = this.chunks.get(i)!.length;
      const last = out[out.length - 1];
      if (last && last.offset + last.length === offset) out[out.length - 1] = { offset: last.offset, length: last.length + length };
      else out.push({ offset, length });
    }
    this.#dirty = out;
    return [...out];
  }

  private chunkLength(index: number): number {
    return Math.min(this.chunkSize, this.size - index * this.chunkSize);
  }

  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    const end = position + buffer.length;
    let at = position;
    let baseRunStart = -1;
    const flushBase = async (upTo: number): Promise<void> => {
      if (baseRunStart >= 0) {
        await this.base.read(buffer.subarray(baseRunStart - position, upTo - position), baseRunStart);
        baseRunStart = -1;
      }
    };
    while (at < end) {
      const index = Math.floor(at / this.chunkSize);
      const chunkStart = index * this.chunkSize;
      const stop = Math.min(end, chunkStart + this.chunkSize);
      const chunk = this.chunks.get(index);
      if (chunk) {
        await flushBase(at);
        buffer.set(chunk.subarray(at - chunkStart, stop - chunkStart), at - position);
      } else if (baseRunStart < 0) {
        baseRunStart = at;
      }
      at = stop;
    }
    await flushBase(end);
  }

  protected override async _write(buffer: Uint8Array, position: number): Promise<void> {
    const end = position + buffer.length;
    let at = position;
    while (at < end) {
      const index = Math.floor(at / this.chunkSize);
      const chunkStart = index * this.chunkSize;
      const stop = Math.min(end, chunkStart + this.chunkSize);
      let chunk = this.chunks.get(index);
      if (!chunk) {
        chunk = new Uint8Array(this.chunkLength(index));
        // A partial write needs the rest of the chunk from the base.
        if (at > chunkStart || stop < chunkStart + chunk.length) await this.base.read(chunk, chunkStart);
        this.chunks.set(index, chunk);
        this.#dirty = undefined;
      }
      chunk.set(buffer.subarray(at - position, stop - position), at - chunkStart);
      at = stop;
    }
  }

  protected override async *_extents(range: Range): AsyncIterable<Extent> {
    const end = range.offset + range.length;
    const dirty = this.dirtyRanges().filter((d) => d.offset < end && d.offset + d.length > range.offset);
    let d = 0;
    let at = range.offset;
    for await (const e of this.base.extents(range)) {
      const eEnd = e.offset + e.length;
      while (at < eEnd) {
        while (d < dirty.length && dirty[d]!.offset + dirty[d]!.length <= at) d++;
        const next = dirty[d];
        if (next && next.offset <= at) {
          const stop = Math.min(eEnd, next.offset + next.length);
          yield { offset: at, length: stop - at, kind: 'data' };
          at = stop;
        } else {
          const stop = Math.min(eEnd, next ? next.offset : eEnd);
          yield { offset: at, length: stop - at, kind: e.kind };
          at = stop;
        }
      }
    }
  }

  protected override async _close(): Promise<void> {
    this.chunks.clear();
    this.#dirty = undefined;
    if (this.owns) await this.base.close();
  }
}
