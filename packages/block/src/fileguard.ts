import { constants, type Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { ImageError } from './errors.js';

/** What identifies a file whatever name reaches it (a symlink, a hard link, `./x`). */
export interface FileIdentity {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
}

/**
 * Flags for opening an input: O_NONBLOCK so that opening a FIFO returns at once (the type
 * check then refuses it) instead of waiting forever for a writer. It changes nothing for
 * regular files and block devices.
 */
export const INPUT_OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;
export const INPUT_OPEN_FLAGS_RW = constants.O_RDWR | constants.O_NONBLOCK;

/** The kind of a non-regular file, for messages. */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFile()) return 'a regular file';
  return 'not a regular file';
}

/**
 * Images are read from regular files and block devices only. A FIFO or a character device
 * (/dev/zero) has no size and no random access: reading one would hang or produce an empty
 * disk, so it is refused when opened.
 */
export function checkInputType(st: Stats, path: string): void {
  if (st.isFile() || st.isBlockDevice()) return;
  throw new ImageError('E_FILE_TYPE', `is ${fileKind(st)}; an image must be a regular file or a block device`, { file: path });
}

/** The size of a block device: fstat says 0, sysfs gives it in 512-byte sectors. */
export async function blockDeviceSize(st: Stats, path: string): Promise<number> {
  // glibc's dev_t layout: major in bits 8-19 (and 32+), minor in bits 0-7 and 20-31.
  const major = (Math.floor(st.rdev / 0x100) & 0xfff) | (Math.floor(st.rdev / 0x100000000) & ~0xfff);
  const minor = (st.rdev & 0xff) | (Math.floor(st.rdev / 0x1000) & 0xfff00);
  try {
    const sectors = Number((await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8')).trim());
    if (Number.isSafeInteger(sectors * 512)) return sectors * 512;
  } catch {
    // no sysfs: fall through
  }
  throw new ImageError('E_IO', `cannot tell the size of block device ${major}:${minor}`, { file: path });
}

export function identityOf(path: string, st: Stats): FileIdentity {
  return { path, dev: st.dev, ino: st.ino };
}

/**
 * Refuse an output that would replace an input or a device node, before any work: the
 * output is compared by device and inode (so a symlink or a hard link to the input is
 * caught), and an existing output must be a regular file, since the finished output is
 * renamed over it (a device node would be replaced by a file).
 */
export async function checkOutputPath(output: string, inputs: readonly FileIdentity[]): Promise<void> {
  let st: Stats;
  try {
    st = await stat(output);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new ImageError('E_IO', `cannot check the output: ${(err as Error).message}`, { file: output, cause: err });
  }
  const same = inputs.find((i) => i.dev === st.dev && i.ino === st.ino);
  if (same) {
    const via = same.path === output ? '' : ` (${same.path})`;
    throw new ImageError('E_SAME_FILE', `the output is the input${via}; amitrans never writes over its input: name another output`, { file: output });
  }
  if (!st.isFile()) {
    throw new ImageError('E_FILE_TYPE', `is ${fileKind(st)}; an output must be a new or regular file (amitrans does not write over devices)`, { file: output });
  }
}
