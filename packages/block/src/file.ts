import { open, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { BaseDevice, type Extent, type Range } from './device.js';
import { ImageError } from './errors.js';
import { MIN_HOLE_BYTES, seekDataRanges } from './holes.js';
import { INPUT_OPEN_FLAGS, INPUT_OPEN_FLAGS_RW, blockDeviceSize, checkInputType, identityOf, type FileIdentity } from './fileguard.js';

/** Read exactly `buffer.length` bytes at `position`, looping over short reads. */
export async function readFully(handle: FileHandle, buffer: Uint8Array, position: number, file = '?'): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await handle.read(buffer, done, buffer.length - done, position + done);
    if (bytesRead === 0) {
      throw new ImageError('E_TRUNCATED',
        `file ends after ${position + done} bytes, ${buffer.length - done} bytes short of what was asked`,
        { file, offset: position + done });
    }
    done += bytesRead;
  }
}

/**
 * Write all of `buffer` at `position`, looping over short writes. With `file`, a system
 * error (ENOSPC, EFBIG, EIO) becomes an ImageError naming the file and what it is for
 * ("the output", "a temporary file"): Node's own message names neither.
 */
export async function writeFully(handle: FileHandle, buffer: Uint8Array, position: number, file?: { path: string; role: string }): Promise<void> {
  let done = 0;
  try {
    while (done < buffer.length) {
      const { bytesWritten } = await handle.write(buffer, done, buffer.length - done, position + done);
      done += bytesWritten;
    }
  } catch (err) {
    if (!file || err instanceof ImageError) throw err;
    throw writeError(err, file, position + done);
  }
}

/** A failed write or flush of `file` as an ImageError that says which file and which side. */
export function writeError(err: unknown, file: { path: string; role: string }, offset?: number): ImageError {
  const e = err as NodeJS.ErrnoException;
  const why = e.code === 'ENOSPC' ? 'no space left on the device' : e.code === 'EFBIG' ? 'the file would be larger than this file system allows' : e.message;
  return new ImageError('E_IO', `cannot write ${file.role}: ${why}${e.code ? ` (${e.code})` : ''}`, { file: file.path, ...(offset !== undefined ? { offset } : {}), cause: err });
}

export interface FileDeviceOptions {
  /** Open for writing. The default is read-only: the input image is never modified. */
  writable?: boolean;
}

/** A regular file (or block device node) read and written in place with positional I/O. */
export class FileDevice extends BaseDevice {
  readonly path: string;
  readonly handle: FileHandle;

  /** Device and inode: what an output is compared with so it never replaces an input. */
  readonly identity: FileIdentity;

  /** Where a sparse regular file's data lies (seekDataRanges), for a read-only file with holes worth skipping. */
  readonly #dataMap: Promise<readonly Range[] | undefined> | undefined;

  private constructor(path: string, handle: FileHandle, size: number, writable: boolean, st: Stats) {
    super(size, writable, 'file');
    this.path = path;
    this.handle = handle;
    this.identity = identityOf(path, st);
    // Only a read-only regular file with enough unallocated bytes to be worth asking about:
    // a written file's holes move, and a block device has no holes to seek.
    // Asked at once, so that starting python3 overlaps the format probe rather than following it.
    if (!writable && st.isFile() && size - st.blocks * 512 >= MIN_HOLE_BYTES) this.#dataMap = seekDataRanges(handle.fd, size);
  }

  static async open(path: string, options: FileDeviceOptions = {}): Promise<FileDevice> {
    const writable = options.writable ?? false;
    let handle: FileHandle;
    try {
      handle = await open(path, writable ? INPUT_OPEN_FLAGS_RW : INPUT_OPEN_FLAGS);
    } catch (err) {
      throw new ImageError('E_IO', `cannot open: ${(err as Error).message}`, { file: path, cause: err });
    }
    try {
      const st = await handle.stat();
      checkInputType(st, path);
      const size = st.isBlockDevice() ? await blockDeviceSize(st, path) : st.size;
      return new FileDevice(path, handle, size, writable, st);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  protected override _read(buffer: Uint8Array, position: number): Promise<void> {
    return readFully(this.handle, buffer, position, this.path);
  }

  protected override _write(buffer: Uint8Array, position: number): Promise<void> {
    return writeFully(this.handle, buffer, position);
  }

  /** A sparse file's holes map as 'unallocated' (never read); anything else as one data extent. */
  protected override async *_extents(range: Range): AsyncIterable<Extent> {
    const map = await this.#dataMap;
    if (map === undefined) yield { offset: range.offset, length: range.length, kind: 'data' };
    else yield* mapExtents(map, range);
  }

  protected override _close(): Promise<void> {
    return this.handle.close();
  }
}

/** `range` cut by sorted data ranges into 'data' and 'unallocated' extents. */
function* mapExtents(data: readonly Range[], range: Range): Iterable<Extent> {
  const end = range.offset + range.length;
  let lo = 0;
  let hi = data.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (data[mid]!.offset + data[mid]!.length <= range.offset) lo = mid + 1;
    else hi = mid;
  }
  let at = range.offset;
  for (let i = lo; at < end; i++) {
    const d = data[i];
    const dataStart = d === undefined ? end : Math.max(at, Math.min(end, d.offset));
    if (dataStart > at) yield { offset: at, length: dataStart - at, kind: 'unallocated' };
    if (d === undefined || dataStart >= end) break;
    const dataEnd = Math.min(end, d.offset + d.length);
    yield { offset: dataStart, length: dataEnd - dataStart, kind: 'data' };
    at = dataEnd;
  }
}
