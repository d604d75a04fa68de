import { createRequire } from 'node:module';

/**
 * The slice of the `ext2fs` npm package (balena's WebAssembly build of e2fsprogs'
 * libext2fs, CommonJS, untyped) that ExtFs uses, typed by hand from its lib/*.js.
 *
 * Facts about that package this code relies on (read from node_modules/ext2fs, 4.2.x):
 * - `mount(disk, offset)` opens the filesystem read-write (EXT2_FLAG_RW) whatever the
 *   caller wants, and reads the bitmaps; `umount(fs)` is ext2fs_close, the only call that
 *   writes bitmaps, group descriptors and superblock back.
 * - The disk object needs read/write(buffer, bufferOffset, length, position), discard(offset,
 *   length) and flush(); a throw in any of them becomes a bare EIO inside the library.
 * - `fs.trim()` walks the in-memory block bitmap and calls disk.discard for every run of
 *   free blocks from s_first_data_block to the end.
 * - Errors are ErrnoException with a POSIX `code` ('ENOENT', ...) and WASI `errno`.
 * - Every call goes through one module-wide queue, but its "hooks" keep per-call state in
 *   module globals across awaits, so callers must not interleave calls (see `exclusive`).
 */
export interface Ext2fsDisk {
  read(buffer: Buffer, bufferOffset: number, length: number, position: number): Promise<unknown>;
  write(buffer: Buffer, bufferOffset: number, length: number, position: number): Promise<unknown>;
  discard(offset: number, length: number): Promise<void>;
  flush(): Promise<void>;
}

export interface RawStats {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  ino: number;
  nlink: number;
  mtime: Date;
}

export interface FsPromises {
  open(path: string, flags: number, mode?: number): Promise<{ fd: number }>;
  close(fd: number): Promise<void>;
  read(fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(fd: number, buffer: Buffer, offset: number, length: number, position: number | null): Promise<{ bytesWritten: number }>;
  fstat(fd: number): Promise<RawStats>;
  lstat(path: string): Promise<RawStats>;
  stat(path: string): Promise<RawStats>;
  readdir(path: string): Promise<string[]>;
  mkdir(path: string, mode: number): Promise<void>;
  rmdir(path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  readlink(path: string): Promise<string>;
  chmod(path: string, mode: number): Promise<void>;
  chown(path: string, uid: number, gid: number): Promise<void>;
}

export interface MountedFs {
  promises: FsPromises;
  trim(): Promise<void>;
}

export interface Ext2fsModule {
  mount(disk: Ext2fsDisk, offset?: number): Promise<MountedFs>;
  umount(fs: MountedFs): Promise<void>;
}

/** The open(2) flags the package understands (its lib/fs.js constants, Linux values). */
export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  CREAT: 0o100,
  EXCL: 0o200,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NOFOLLOW: 0o400000,
  /** Without it every read rewrites the inode's atime. */
  NOATIME: 0o1000000,
} as const;

export interface ErrnoLike {
  code: string;
  errno?: number;
  message: string;
}

export function isErrnoException(err: unknown): err is ErrnoLike {
  return err instanceof Error && (err as Error & { name: string }).name === 'ErrnoException'
    && typeof (err as unknown as ErrnoLike).code === 'string';
}

let loaded: Ext2fsModule | undefined;

/**
 * Load the WASM module on first use: importing @amitrans/extfs for superblock facts must
 * not pay for (or be changed by) a 400 KB WebAssembly module.
 */
export function loadExt2fs(): Ext2fsModule {
  if (!loaded) {
    const require = createRequire(import.meta.url);
    loaded = require('ext2fs') as Ext2fsModule;
  }
  return loaded;
}

let tail: Promise<unknown> = Promise.resolve();

/** Run `fn` alone: one libext2fs call sequence at a time across every open ExtFs. */
export function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const run = tail.then(fn, fn);
  tail = run.catch(() => undefined);
  return run;
}
