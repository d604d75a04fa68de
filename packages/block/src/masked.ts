import { BaseDevice, type BlockDevice, type Extent, type Range } from './device.js';
import { ImageError } from './errors.js';

/**
 * A read-only view of a device in which some ranges (a filesystem's free blocks) read as
 * zeros and map as 'unallocated': they are never read from the base, so stale deleted
 * data never reaches an output, and writers store nothing for them.
 */
export class MaskedDevice extends BaseDevice {
  readonly base: BlockDevice;
  /** Sorted, merged, non-overlapping. */
  readonly holes: readonly Range[];

  constructor(base: BlockDevice, holes: readonly Range[]) {
    super(base.size, false, 'masked device');
    this.base = base;
    const sorted = [...holes].filter((h) => h.length > 0).sort((a, b) => a.offset - b.offset);
    const merged: Range[] = [];
    for (const h of sorted) {
      if (h.offset < 0 || h.offset + h.length > base.size) {
        throw new ImageError('E_OUT_OF_RANGE', `hole ${h.offset}+${h.length} lies outside the ${base.size}-byte device`);
      }
      const last = merged[merged.length - 1];
      if (last && h.offset <= last.offset + last.length) {
        merged[merged.length - 1] = { offset: last.offset, length: Math.max(last.length, h.offset + h.length - last.offset) };
      } else merged.push(h);
    }
    this.holes = merged;
  }

  /** Index of the first hole that ends after `position`. */
  private firstHole(position: number): number {
    let lo = 0;
    let hi = this.holes.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const h = this.holes[mid]!;
      if (h.offset + h.length <= position) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    for (const p of this.pieces({ offset: position, length: buffer.length })) {
      const part = buffer.subarray(p.offset - position, p.offset - position + p.length);
      if (p.hole) part.fill(0);
      else await this.base.read(part, p.offset);
    }
  }

  /** The range cut into holes and the stretches between them, in order. */
  private *pieces(range: Range): Iterable<{ hole: boolean; offset: number; length: number }> {
    const end = range.offset + range.length;
    let i = this.firstHole(range.offset);
    let at = range.offset;
    while (at < end) {
      const h = this.holes[i];
      const hole = h !== undefined && h.offset <= at;
      const stop = hole ? Math.min(end, h.offset + h.length) : Math.min(end, h ? h.offset : end);
      yield { hole, offset: at, length: stop - at };
      if (hole) i++;
      at = stop;
    }
  }

  protected override async *_extents(range: Range): AsyncIterable<Extent> {
    for (const p of this.pieces(range)) {
      if (p.hole) yield { offset: p.offset, length: p.length, kind: 'unallocated' };
      else yield* this.base.extents(p);
    }
  }
}
