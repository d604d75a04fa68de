import { zeroRuns } from './bytes.js';
import { dataRanges, unitWindows } from './clusters.js';
import type { BlockDevice } from './device.js';
import { readAhead } from './readahead.js';
import { CountingSink, type Sink } from './sink.js';
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
  const out = new CountingSink(sink);
  let bytesRead = 0;
  // Windows of single bytes: each one a piece of one data range, nothing zero-filled.
  const windows = readAhead(disk, unitWindows(await dataRanges(disk, options.signal), 1, chunkSize), { maxLength: chunkSize, signal: options.signal });
  if (sink.seekable) {
    await WriteBehind.over(out, async (behind) => {
      for await (const w of windows) {
        bytesRead += w.bytesRead;
        for (const r of zeroRuns(w.data, sparseSize)) {
          if (r.zero) continue;
          behind.skip(base + w.offset + r.start - behind.position);
          behind.write(w.data.subarray(r.start, r.end));
        }
        await behind.endWindow();
        options.progress?.(w.offset + w.length, disk.size);
      }
      behind.skip(base + disk.size - behind.position);
    });
  } else {
    for await (const w of windows) {
      bytesRead += w.bytesRead;
      await out.padTo(base + w.offset);
      // A stream has no holes: zero runs are skipped as zeros, and not counted as data.
      for (const r of zeroRuns(w.data, sparseSize)) await (r.zero ? out.skip(r.end - r.start) : out.write(w.data.subarray(r.start, r.end)));
      options.progress?.(w.offset + w.length, disk.size);
    }
    await out.padTo(base + disk.size);
  }
  options.progress?.(disk.size, disk.size);
  return { bytesRead, bytesWritten: out.written };
}
