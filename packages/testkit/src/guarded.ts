import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import {
  BaseDevice,
  FileDevice,
  FileSink,
  ImageError,
  StreamSink,
  type BlockDevice,
  type Extent,
  type Range,
} from '@amitrans/block';
import type { SparseLayout } from './index.js';

/**
 * A raw file whose allocation map is the layout writeSparseImage made: 'hole' runs are
 * 'unallocated', zero runs 'zero'. Reading any byte outside a data run throws, so a writer
 * that reads what it should skip fails the test.
 */
export class GuardedSource extends BaseDevice {
  reads = 0;
  constructor(
    private readonly file: BlockDevice,
    private readonly layout: SparseLayout,
  ) {
    super(layout.size, false, 'guarded source');
  }

  static async open(path: string, layout: SparseLayout): Promise<GuardedSource> {
    return new GuardedSource(await FileDevice.open(path), layout);
  }

  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    const end = position + buffer.length;
    for (const r of this.layout.runs) {
      if (r.kind !== 'data' && r.offset < end && r.offset + r.length > position) {
        throw new Error(`writer read ${r.kind} range ${r.offset}+${r.length} (asked ${position}+${buffer.length})`);
      }
    }
    this.reads += buffer.length;
    await this.file.read(buffer, position);
  }

  protected override async *_extents(range: Range): AsyncIterable<Extent> {
    const end = range.offset + range.length;
    for (const r of this.layout.runs) {
      const s = Math.max(r.offset, range.offset);
      const t = Math.min(r.offset + r.length, end);
      if (t > s) yield { offset: s, length: t - s, kind: r.kind === 'hole' ? 'unallocated' : r.kind };
    }
  }

  protected override _close(): Promise<void> {
    return this.file.close();
  }
}

/** Every byte of a device, for small test images. */
export async function readAll(dev: BlockDevice): Promise<Uint8Array> {
  const out = new Uint8Array(dev.size);
  for (let at = 0; at < dev.size; at += 1 << 20) await dev.read(out.subarray(at, Math.min(dev.size, at + (1 << 20))), at);
  return out;
}

/** Compare a device with a raw file; the device may be longer (sector rounding) if the rest is zero. */
export async function expectSameAsFile(dev: BlockDevice, path: string): Promise<void> {
  const want = await readFile(path);
  const got = await readAll(dev);
  if (got.length < want.length) throw new Error(`device is ${got.length} bytes, file ${want.length}`);
  if (Buffer.compare(Buffer.from(got.subarray(0, want.length)), want) !== 0) {
    let i = 0;
    while (got[i] === want[i]) i++;
    throw new Error(`device differs from ${path} at byte ${i}`);
  }
  for (let i = want.length; i < got.length; i++) if (got[i] !== 0) throw new Error(`non-zero byte ${i} past the source size`);
}

/** A sink over a file opened as a plain write stream: not seekable, like stdout. */
export function streamSinkTo(path: string): StreamSink {
  return new StreamSink(createWriteStream(path));
}

export async function fileSink(path: string): Promise<FileSink> {
  return FileSink.create(path);
}

/** The error code of a rejected promise, or 'ok' / 'not ImageError: ...'. */
export async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof ImageError) return err.code;
    return `not ImageError: ${(err as Error).stack ?? String(err)}`;
  }
}
