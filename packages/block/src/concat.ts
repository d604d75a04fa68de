import { BaseDevice, type BlockDevice, type Extent, type Range } from './device.js';

/** Devices laid end to end: an MBR and gap, then a filesystem, then padding. */
export class ConcatDevice extends BaseDevice {
  readonly parts: readonly BlockDevice[];
  private readonly starts: number[];

  /** `owns`: close the parts when this device is closed (default: the caller closes them). */
  constructor(parts: readonly BlockDevice[], options: { owns?: boolean } = {}) {
    const starts: number[] = [];
    let total = 0;
    for (const p of parts) {
      starts.push(total);
      total += p.size;
    }
    super(total, parts.every((p) => p.writable), 'concatenation');
    this.parts = parts;
    this.starts = starts;
    this.owns = options.owns ?? false;
  }

  private readonly owns: boolean;

  /** Index of the part that holds byte `position` (binary search). */
  private partAt(position: number): number {
    let lo = 0;
    let hi = this.parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= position) lo = mid;
      else hi = mid - 1;
    }
    // Skip empty parts that start at the same offset.
    while (lo < this.parts.length - 1 && this.parts[lo]!.size === 0) lo++;
    return lo;
  }

  private async each(
    position: number,
    length: number,
    fn: (part: BlockDevice, at: number, from: number, n: number) => Promise<void>,
  ): Promise<void> {
    let i = this.partAt(position);
    let done = 0;
    while (done < length) {
      const part = this.parts[i]!;
      const at = position + done - this.starts[i]!;
      const n = Math.min(length - done, part.size - at);
      if (n > 0) await fn(part, at, done, n);
      done += Math.max(n, 0);
      i++;
    }
  }

  protected override _read(buffer: Uint8Array, position: number): Promise<void> {
    return this.each(position, buffer.length, (p, at, from, n) => p.read(buffer.subarray(from, from + n), at));
  }

  protected override _write(buffer: Uint8Array, position: number): Promise<void> {
    return this.each(position, buffer.length, (p, at, from, n) => p.write(buffer.subarray(from, from + n), at));
  }

  /** The parts that overlap `range`, each with the part of the range inside it (part offsets). */
  private *overlapping(range: Range): Iterable<{ part: BlockDevice; base: number; inner: Range }> {
    const end = range.offset + range.length;
    for (let i = this.partAt(range.offset); i < this.parts.length && this.starts[i]! < end; i++) {
      const part = this.parts[i]!;
      const base = this.starts[i]!;
      const s = Math.max(range.offset, base);
      const t = Math.min(end, base + part.size);
      if (t > s) yield { part, base, inner: { offset: s - base, length: t - s } };
    }
  }

  protected override async *_extents(range: Range): AsyncIterable<Extent> {
    for (const { part, base, inner } of this.overlapping(range)) {
      for await (const e of part.extents(inner)) yield { offset: e.offset + base, length: e.length, kind: e.kind };
    }
  }

  protected override async _close(): Promise<void> {
    if (this.owns) for (const p of this.parts) await p.close();
  }
}
