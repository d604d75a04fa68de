import type { BlockDevice, Extent, Range } from './device.js';
import { ImageError } from './errors.js';

/**
 * A device whose errors name its file. Container formats read tables lazily (a qcow2 L2
 * table, a VMDK grain table) long after the file was opened, deep in a copy; their errors
 * know the structure and the offset but not the file, which this adds.
 */
export class NamedErrorsDevice implements BlockDevice {
  constructor(private readonly inner: BlockDevice, readonly file: string) {}

  get size(): number {
    return this.inner.size;
  }

  get writable(): boolean {
    return this.inner.writable;
  }

  read(buffer: Uint8Array, position: number): Promise<void> {
    return this.inner.read(buffer, position).catch((err: unknown) => this.named(err));
  }

  write(buffer: Uint8Array, position: number): Promise<void> {
    return this.inner.write(buffer, position).catch((err: unknown) => this.named(err));
  }

  async *extents(range?: Range): AsyncIterable<Extent> {
    try {
      yield* this.inner.extents(range);
    } catch (err) {
      this.named(err);
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private named(err: unknown): never {
    throw err instanceof ImageError ? err.inFile(this.file) : err;
  }
}
