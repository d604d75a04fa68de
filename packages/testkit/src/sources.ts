import { BaseDevice, FileDevice, MemoryDevice, ZeroDetectDevice, collectExtents, type BlockDevice, type Extent, type Range } from '@amitrans/block';
import { prng } from './index.js';
import { createHash } from 'node:crypto';

/**
 * A source that refuses to be read anywhere its own map says 'zero' or 'unallocated':
 * writers must take those ranges from the map, never from the data.
 */
export class StrictSource extends BaseDevice {
  readonly base: BlockDevice;
  readonly map: Extent[];
  dataRead = 0;

  private constructor(base: BlockDevice, map: Extent[]) {
    super(base.size, false, 'strict source');
    this.base = base;
    this.map = map;
  }

  static async over(base: BlockDevice): Promise<StrictSource> {
    return new StrictSource(base, await collectExtents(base));
  }

  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    const end = position + buffer.length;
    for (const e of this.map) {
      if (e.kind !== 'data' && e.offset < end && position < e.offset + e.length) {
        throw new Error(`writer read ${position}+${buffer.length}, which overlaps a '${e.kind}' extent at ${e.offset}+${e.length}`);
      }
    }
    this.dataRead += buffer.length;
    await this.base.read(buffer, position);
  }

  protected override async *_extents(range: Range): AsyncIterable<Extent> {
    const end = range.offset + range.length;
    for (const e of this.map) {
      const s = Math.max(e.offset, range.offset);
      const t = Math.min(e.offset + e.length, end);
      if (t > s) yield { offset: s, length: t - s, kind: e.kind };
    }
  }
}

/** A raw file as a source with a real map (4 KiB zero detection, like qemu-img -S 4k). */
export async function rawSource(path: string): Promise<{ file: FileDevice; source: StrictSource }> {
  const file = await FileDevice.open(path);
  const source = await StrictSource.over(new ZeroDetectDevice(file));
  return { file, source };
}

/** sha256 of a device's first `length` bytes (default all), read in 1 MiB chunks. */
export async function deviceHash(dev: BlockDevice, length = dev.size): Promise<string> {
  const h = createHash('sha256');
  const chunk = 1024 * 1024;
  for (let at = 0; at < length; at += chunk) {
    const buf = new Uint8Array(Math.min(chunk, length - at));
    await dev.read(buf, at);
    h.update(buf);
  }
  return h.digest('hex');
}

/** True when the device reads as zeros over [from, size). */
export async function zeroTail(dev: BlockDevice, from: number): Promise<boolean> {
  const chunk = 1024 * 1024;
  for (let at = from; at < dev.size; at += chunk) {
    const buf = new Uint8Array(Math.min(chunk, dev.size - at));
    await dev.read(buf, at);
    if (buf.some((b) => b !== 0)) return false;
  }
  return true;
}

/** Every byte the layout says is data must lie in a 'data' extent of `map`. */
export function uncoveredData(layout: { runs: { offset: number; length: number; kind: string }[] }, map: Extent[]): string[] {
  const problems: string[] = [];
  for (const r of layout.runs) {
    if (r.kind !== 'data') continue;
    for (const e of map) {
      if (e.kind !== 'data' && e.offset < r.offset + r.length && r.offset < e.offset + e.length) {
        problems.push(`data run ${r.offset}+${r.length} overlaps '${e.kind}' extent ${e.offset}+${e.length}`);
      }
    }
  }
  return problems;
}

/** A disk whose map has data, zero and unallocated runs that do not line up with 1 MiB. */
export class MappedDisk extends MemoryDevice {
  constructor(bytes: Uint8Array, readonly map: Extent[]) {
    super(bytes, { writable: false });
  }
  protected override async *_extents(range: Range): AsyncIterable<Extent> {
    for (const e of this.map) {
      const s = Math.max(e.offset, range.offset);
      const t = Math.min(e.offset + e.length, range.offset + range.length);
      if (t > s) yield { offset: s, length: t - s, kind: e.kind };
    }
  }
}

export function mappedDisk(seed: number, size = 9 * 1024 * 1024 + 1536): MappedDisk {
  const rnd = prng(seed);
  const bytes = new Uint8Array(size);
  const map: Extent[] = [];
  for (let at = 0; at < size; ) {
    const length = Math.min(size - at, rnd.int(1, 3000) * 512);
    const r = rnd.next();
    const kind = r < 0.4 ? 'data' : r < 0.6 ? 'zero' : 'unallocated';
    if (kind === 'data') bytes.set(rnd.bytes(length), at);
    map.push({ offset: at, length, kind });
    at += length;
  }
  return new MappedDisk(bytes, map);
}

