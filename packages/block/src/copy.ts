import { zeroRuns } from './bytes.js';
import type { BlockDevice } from './device.js';
import { mergeExtents } from './extents.js';
import { readAhead, type ReadPlan } from './readahead.js';
import type { Sink } from './sink.js';
import { WriteBehind } from './writebehind.js';

export interface CopyOptions {
  /** Bytes per read. Default 4 MiB. */
  chunkSize?: number;
  /** Zero blocks of this size become holes on a seekable sink (qemu-img's -S). Default 4 KiB. */
  sparseSize?: number;
  progress?: ((done: number, total: number) => void) | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Append the whole of `disk` to `sink` as it reads, byte for byte, from the sink's current
 * position: 'data' extents are read (ahead of the writes) and copied, except blocks of
 * zeros, which like 'zero' and 'unallocated' extents become holes (zeros on a stream).
 * On a seekable sink a window's writes run while the next window is scanned (WriteBehind).
 */
export async function copyToSink(disk: BlockDevice, sink: Sink, options: CopyOptions = {}): Promise<{ bytesRead: number; bytesWritten: number }> {
  const chunkSize = options.chunkSize ?? 4 * 1024 * 1024;
  const sparseSize = options.sparseSize ?? 4096;
  const base = sink.position;
  let bytesRead = 0;
  let bytesWritten = 0;
  const plans = async function* (): AsyncIterable<ReadPlan> {
    for await (const e of mergeExtents(disk.extents())) {
      if (e.kind !== 'data') continue;
      for (let at = e.offset; at < e.offset + e.length; at += chunkSize) {
        yield { offset: at, length: Math.min(chunkSize, e.offset + e.length - at) };
      }
    }
  };
  if (sink.seekable) {
    bytesWritten = await WriteBehind.over(sink, async (out) => {
      for await (const w of readAhead(disk, plans(), { maxLength: chunkSize, signal: options.signal })) {
        bytesRead += w.bytesRead;
        for (const r of zeroRuns(w.data, sparseSize)) {
          if (r.zero) continue;
          out.skip(base + w.offset + r.start - out.position);
          out.write(w.data.subarray(r.start, r.end));
        }
        await out.endWindow();
        options.progress?.(w.offset + w.length, disk.size);
      }
      out.skip(base + disk.size - out.position);
    });
    options.progress?.(disk.size, disk.size);
    return { bytesRead, bytesWritten };
  }
  for await (const w of readAhead(disk, plans(), { maxLength: chunkSize, signal: options.signal })) {
    bytesRead += w.bytesRead;
    const gap = w.offset - (sink.position - base);
    if (gap > 0) await sink.skip(gap);
    for (const r of zeroRuns(w.data, sparseSize)) {
      // A stream has no holes: zeros are written out.
      await sink.write(w.data.subarray(r.start, r.end));
      if (!r.zero) bytesWritten += r.end - r.start;
    }
    options.progress?.(w.offset + w.length, disk.size);
  }
  const tail = disk.size - (sink.position - base);
  if (tail > 0) await sink.skip(tail);
  options.progress?.(disk.size, disk.size);
  return { bytesRead, bytesWritten };
}
