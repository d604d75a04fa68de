import { BaseDevice, type Extent, type Range } from './device.js';

/** A device over a buffer in memory: for tests, headers and small synthetic disks. */
export class MemoryDevice extends BaseDevice {
  readonly bytes: Uint8Array;

  constructor(bytesOrSize: Uint8Array | number, options: { writable?: boolean } = {}) {
    const bytes = typeof bytesOrSize === 'number' ? new Uint8Array(bytesOrSize) : bytesOrSize;
    super(bytes.length, options.writable ?? true, 'memory device');
    this.bytes = bytes;
  }

  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    buffer.set(this.bytes.subarray(position, position + buffer.length));
  }

  protected override async _write(buffer: Uint8Array, position: number): Promise<void> {
    this.bytes.set(buffer, position);
  }
}

/** A device of `size` bytes that reads as zeros and stores nothing. */
export class ZeroDevice extends BaseDevice {
  constructor(size: number) {
    super(size, false, 'zero device');
  }

  protected override async _read(buffer: Uint8Array): Promise<void> {
    buffer.fill(0);
  }

  protected override async *_extents(range: Range): AsyncIterable<Extent> {
    yield { offset: range.offset, length: range.length, kind: 'unallocated' };
  }
}
