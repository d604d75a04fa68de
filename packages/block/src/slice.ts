import { BaseDevice, checkRange, type BlockDevice, type Extent, type Range } from './device.js';

/** A window [start, start + length) of another device: a partition, a tar entry, a fixed VHD's data. */
export class SliceDevice extends BaseDevice {
  readonly base: BlockDevice;
  readonly start: number;

  constructor(base: BlockDevice, start: number, length: number, options: { writable?: boolean; name?: string } = {}) {
    checkRange(start, length, base.size, options.name ?? 'slice');
    super(length, (options.writable ?? base.writable) && base.writable, options.name ?? 'slice');
    this.base = base;
    this.start = start;
  }

  protected override _read(buffer: Uint8Array, position: number): Promise<void> {
    return this.base.read(buffer, this.start + position);
  }

  protected override _write(buffer: Uint8Array, position: number): Promise<void> {
    return this.base.write(buffer, this.start + position);
  }

  protected override async *_extents(range: Range): AsyncIterable<Extent> {
    for await (const e of this.base.extents({ offset: this.start + range.offset, length: range.length })) {
      yield { offset: e.offset - this.start, length: e.length, kind: e.kind };
    }
  }
}
