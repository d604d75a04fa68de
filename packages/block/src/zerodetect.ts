import { isZero } from './bytes.js';
import { BaseDevice, type BlockDevice, type Extent, type Range } from './device.js';

export interface ZeroDetectOptions {
  /** Zero runs are found at this granularity, aligned to absolute offsets. Default 4 KiB. */
  granularity?: number;
  /** Bytes read per request while scanning. Default 2 MiB. */
  readSize?: number;
  owns?: boolean;
}

/**
 * For sources with no allocation map of their own (raw files, decompressed streams):
 * 'data' extents of the base are read and split into 'data' and 'zero' runs at 4 KiB
 * granularity, as qemu-img's -S 4k does. Reads pass straight through.
 */
export class ZeroDetectDevice extends BaseDevice {
  readonly base: BlockDevice;
  readonly granularity: number;
  private readonly readSize: number;
  private readonly owns: boolean;

  constructor(base: BlockDevice, options: ZeroDetectOptions = {}) {
    super(base.size, base.writable, 'zero-detecting device');
    this.base = base;
    this.granularity = options.granularity ?? 4096;
    this.readSize = Math.max(this.granularity, Math.floor((options.readSize ?? 2 * 1024 * 1024) / this.granularity) * this.granularity);
    this.owns = options.owns ?? false;
  }

  protected override _read(buffer: Uint8Array, position: number): Promise<void> {
    return this.base.read(buffer, position);
  }

  protected override _write(buffer: Uint8Array, position: number): Promise<void> {
    return this.base.write(buffer, position);
  }

  protected override async *_extents(range: Range): AsyncIterable<Extent> {
    const g = this.granularity;
    let run: { offset: number; length: number; kind: 'data' | 'zero' } | undefined;
    const emit = function* (offset: number, length: number, kind: 'data' | 'zero'): Iterable<Extent> {
      if (run && run.kind === kind && run.offset + run.length === offset) {
        run.length += length;
        return;
      }
      if (run) yield { ...run };
      run = { offset, length, kind };
    };
    const buf = new Uint8Array(this.readSize);
    for await (const e of this.base.extents(range)) {
      if (e.kind !== 'data') {
        if (run) yield { ...run };
        run = undefined;
        yield e;
        continue;
      }
      const eEnd = e.offset + e.length;
      for (let at = e.offset; at < eEnd; ) {
        // Read up to readSize, ending on a granularity boundary (readSize is a multiple of it).
        const stop = Math.min(eEnd, Math.floor((at + this.readSize) / g) * g);
        const chunk = buf.subarray(0, stop - at);
        await this.base.read(chunk, at);
        for (let p = at; p < stop; ) {
          const q = Math.min(stop, (Math.floor(p / g) + 1) * g);
          yield* emit(p, q - p, isZero(chunk.subarray(p - at, q - at)) ? 'zero' : 'data');
          p = q;
        }
        at = stop;
      }
    }
    if (run) yield { ...run };
  }

  protected override async _close(): Promise<void> {
    if (this.owns) await this.base.close();
  }
}
