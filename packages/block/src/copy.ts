import { zeroRuns } from './bytes.js';
import { dataRanges } from './clusters.js';
import { engineCopy, mostlyInFiles } from './copyengine.js';
import type { BlockDevice, Range } from './device.js';
import type { StagedWrite } from './driver.js';
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
 * On a seekable sink a window's writes run while the next window is scanned; when the sink
 * is a file and the source's bytes are mostly in files (a raw input, a translated AMI), a
 * CopyEngine worker copies them instead.
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
  const direct = sink.seekable ? sink.file : undefined;
  if (direct) {
    const ranges = await dataRanges(disk, options.signal);
    if (await mostlyInFiles(disk, ranges)) {
      const copied = await engineCopy(disk, ranges, {
        fd: direct.fd,
        path: direct.path,
        mode: 'positional',
        unit: sparseSize,
        shift: base,
        signal: options.signal,
        onResult: (_, batch) => options.progress?.(batch.offset + batch.length, disk.size),
      });
      // Zeros at the end are a hole: the sink makes the file this long when it is done.
      await sink.skip(base + disk.size - sink.position);
      options.progress?.(disk.size, disk.size);
      return { bytesRead: copied.bytesRead, bytesWritten: copied.bytesWritten };
    }
  }
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

/** True when any of `ranges` (sorted, merged) overlaps [start, end). */
function overlaps(ranges: readonly Range[], start: number, end: number): boolean {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid]!.offset + ranges[mid]!.length <= start) lo = mid + 1;
    else hi = mid;
  }
  return lo < ranges.length && ranges[lo]!.offset < end;
}

/**
 * copyToSink in two stages (see StagedWrite): a CopyEngine starts copying the base's data
 * to the file at once, each byte at the sink's position plus its offset; `finish` rewrites
 * the changed ranges from the final disk and ends the file. Undefined when the sink is not
 * a file or the base's bytes are not mostly in files.
 */
export async function stageCopy(base: BlockDevice, sink: Sink, options: CopyOptions = {}): Promise<StagedWrite | undefined> {
  const direct = sink.seekable ? sink.file : undefined;
  if (!direct) return undefined;
  const ranges = await dataRanges(base, options.signal);
  if (!(await mostlyInFiles(base, ranges))) return undefined;
  const sparseSize = options.sparseSize ?? 4096;
  const shift = sink.position;
  const stop = new AbortController();
  const copying = engineCopy(base, ranges, {
    fd: direct.fd,
    path: direct.path,
    mode: 'positional',
    unit: sparseSize,
    // Every batch is handed over at once: the worker must not wait while this thread inspects.
    depth: 1 << 20,
    shift,
    signal: options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal,
    onResult: (_, batch) => options.progress?.(batch.offset + batch.length, base.size),
  });
  copying.catch(() => undefined);
  return {
    async finish(disk, changed) {
      if (disk.size !== base.size) throw new RangeError(`staged copy: the final disk has ${disk.size} bytes, the base ${base.size}`);
      const copied = await copying;
      let bytesRead = copied.bytesRead;
      let bytesWritten = copied.bytesWritten;
      const window = 1024 * 1024;
      for (const r of changed) {
        for (let at = r.offset; at < r.offset + r.length; at += window) {
          options.signal?.throwIfAborted();
          const data = new Uint8Array(Math.min(window, r.offset + r.length - at));
          await disk.read(data, at);
          bytesRead += data.length;
          for (const z of zeroRuns(data, sparseSize)) {
            // Zeros are written only over what the first stage may have stored there.
            if (z.zero && !overlaps(ranges, at + z.start, at + z.end)) continue;
            await sink.pwrite(data.subarray(z.start, z.end), shift + at + z.start);
            if (!z.zero) bytesWritten += z.end - z.start;
          }
        }
      }
      await sink.skip(shift + disk.size - sink.position);
      options.progress?.(disk.size, disk.size);
      return { bytesRead, bytesWritten };
    },
    async abort() {
      stop.abort();
      await copying.catch(() => undefined);
    },
  };
}
