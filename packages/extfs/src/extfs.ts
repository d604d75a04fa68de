import { CachedDevice, CowOverlay, ImageError, type BlockDevice, type Range } from '@amitrans/block';
import { ExtFsError, pathError } from './errors.js';
import { extType } from './facts.js';
import { INCOMPAT } from './features.js';
import {
  O,
  exclusive,
  isErrnoException,
  loadExt2fs,
  type Ext2fsDisk,
  type FsPromises,
  type MountedFs,
  type RawStats,
} from './libext2fs.js';
import { readSuperblock } from './probe.js';
import { blockSizeOf, type Superblock } from './superblock.js';

export type ExtFileType = 'file' | 'directory' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket' | 'unknown';

export interface ExtStat {
  type: ExtFileType;
  /** The whole st_mode: type bits and permissions, as node's fs.Stats.mode. */
  mode: number;
  /** mode & 0o7777: permissions with setuid, setgid and sticky bits. */
  permissions: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  ino: number;
  nlink: number;
}

export interface ExtFsOpenOptions {
  /** Allow changes (default false). Changes land in a copy-on-write overlay, never in `device`. */
  writable?: boolean;
  /**
   * The overlay to write into; it must sit on `device`. Without it (and when `device` is not
   * itself a CowOverlay) ExtFs makes one, reachable as `fs.device`.
   */
  overlay?: CowOverlay;
}

export interface CreateOptions {
  /** Permission bits for a new file or directory (default 0o644 files, 0o755 directories). */
  mode?: number;
  uid?: number;
  gid?: number;
}

const S_IFMT = 0o170000;
const TYPES: Readonly<Record<number, ExtFileType>> = {
  0o100000: 'file',
  0o040000: 'directory',
  0o120000: 'symlink',
  0o020000: 'chardev',
  0o060000: 'blockdev',
  0o010000: 'fifo',
  0o140000: 'socket',
};

/** libext2fs copies file data through a WASM buffer of this size per call. */
const CHUNK = 1024 * 1024;
/** The package passes file offsets and sizes as 32-bit C longs; stay below 2^31. */
const MAX_FILE_SIZE = 0x7fffffff;
/** The glue stores only the low 16 bits of uid and gid. */
const MAX_ID = 0xffff;
/** The most readFile will hold in memory. */
const MAX_READ = 256 * 1024 * 1024;

/**
 * The disk object libext2fs talks to: positional reads and writes on the overlay, and a
 * discard hook that records free ranges while `freeRanges` runs (and is a no-op otherwise:
 * a discard must never drop data from the overlay).
 */
class OverlayDisk implements Ext2fsDisk {
  readonly device: BlockDevice;
  /** The last error a read or write threw; libext2fs only sees EIO. */
  lastError: unknown;
  recording: Range[] | undefined;

  /** libext2fs reads block by block: a read cache turns thousands of small reads into a few large ones. */
  private readonly cached: CachedDevice;

  constructor(device: BlockDevice) {
    this.device = device;
    this.cached = new CachedDevice(device);
  }

  async read(buffer: Buffer, bufferOffset: number, length: number, position: number): Promise<void> {
    try {
      await this.cached.read(buffer.subarray(bufferOffset, bufferOffset + length), position);
    } catch (err) {
      this.lastError = err;
      throw err;
    }
  }

  async write(buffer: Buffer, bufferOffset: number, length: number, position: number): Promise<void> {
    try {
      await this.cached.write(buffer.subarray(bufferOffset, bufferOffset + length), position);
    } catch (err) {
      this.lastError = err;
      throw err;
    }
  }

  async discard(offset: number, length: number): Promise<void> {
    const r = this.recording;
    if (!r) return;
    const last = r[r.length - 1];
    if (last && last.offset + last.length === offset) r[r.length - 1] = { offset: last.offset, length: last.length + length };
    else r.push({ offset, length });
  }

  async flush(): Promise<void> {}
}

/**
 * Guest paths are absolute and plain: no '.' or '..' components (libext2fs resolves
 * names by itself and would not agree with a lexical clean-up), no NUL.
 */
function guestPath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0')) {
    throw pathError('EINVAL', String(path), 'guest paths must be absolute');
  }
  const clean = path.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
  if (clean.split('/').some((part) => part === '.' || part === '..')) {
    throw pathError('EINVAL', path, 'guest paths may not contain "." or ".." components');
  }
  return clean;
}

function parentOf(path: string): string {
  const at = path.lastIndexOf('/');
  return at <= 0 ? '/' : path.slice(0, at);
}

function toStat(raw: RawStats): ExtStat {
  return {
    type: TYPES[raw.mode & S_IFMT] ?? 'unknown',
    mode: raw.mode,
    permissions: raw.mode & 0o7777,
    uid: raw.uid,
    gid: raw.gid,
    size: raw.size,
    mtime: raw.mtime,
    ino: raw.ino,
    nlink: raw.nlink,
  };
}

function checkId(id: number, what: string, path: string): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_ID) {
    throw new ExtFsError('E_UNSUPPORTED', 'EINVAL', path, `${what} ${id} is not between 0 and 65535 (libext2fs's glue keeps 16 bits)`);
  }
}

function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/**
 * An ext2/3/4 filesystem on a block device, read and edited through libext2fs (the
 * `ext2fs` WASM package). The source device is never written: every change lands in a
 * CowOverlay (`fs.device`), which holds the edited filesystem after `close()`.
 */
export class ExtFs {
  /** The overlay holding the filesystem as edited; read it out after `close()`. */
  readonly device: CowOverlay;
  readonly superblock: Superblock;
  readonly writable: boolean;
  private readonly disk: OverlayDisk;
  private mounted: MountedFs | undefined;

  private constructor(device: CowOverlay, superblock: Superblock, writable: boolean, disk: OverlayDisk, mounted: MountedFs) {
    this.device = device;
    this.superblock = superblock;
    this.writable = writable;
    this.disk = disk;
    this.mounted = mounted;
  }

  static async open(device: BlockDevice, options: ExtFsOpenOptions = {}): Promise<ExtFs> {
    const writable = options.writable ?? false;
    let overlay: CowOverlay;
    if (!writable) {
      // libext2fs always opens read-write; a private overlay keeps even that away from the caller's data.
      overlay = new CowOverlay(device);
    } else if (options.overlay) {
      if (options.overlay.base !== device) {
        throw new ImageError('E_BAD_OFFSET', 'the overlay given to ExtFs.open must sit on the device it opens', { structure: 'ext filesystem' });
      }
      overlay = options.overlay;
    } else {
      overlay = device instanceof CowOverlay ? device : new CowOverlay(device);
    }
    const superblock = await readSuperblock(overlay);
    extType(superblock);
    if (writable && (superblock.s_feature_incompat & INCOMPAT.RECOVER) !== 0) {
      throw new ImageError('E_UNSUPPORTED',
        'the journal needs recovery (needs_recovery is set); run e2fsck on the image before editing it',
        { structure: 'ext superblock', offset: 1024 + 0x60 });
    }
    const disk = new OverlayDisk(overlay);
    const mounted = await exclusive(() => mount(disk));
    return new ExtFs(overlay, superblock, writable, disk, mounted);
  }

  get blockSize(): number {
    return blockSizeOf(this.superblock);
  }

  async readFile(path: string): Promise<Uint8Array> {
    const p = guestPath(path);
    return this.call(p, async (fs) => {
      const { fd } = await fs.open(p, O.RDONLY | O.NOATIME);
      try {
        const st = toStat(await fs.fstat(fd));
        if (st.type === 'directory') throw pathError('EISDIR', p);
        if (st.size > MAX_READ) throw pathError('EFBIG', p, `${st.size} bytes is more than readFile holds in memory`);
        const out = new Uint8Array(st.size);
        let done = 0;
        while (done < st.size) {
          const n = Math.min(CHUNK, st.size - done);
          const buf = Buffer.alloc(n);
          const { bytesRead } = await fs.read(fd, buf, 0, n, done);
          if (bytesRead <= 0) throw new ExtFsError('E_CORRUPT', 'EIO', p, `file ends after ${done} of its ${st.size} bytes`);
          out.set(buf.subarray(0, bytesRead), done);
          done += bytesRead;
        }
        return out;
      } finally {
        await fs.close(fd);
      }
    });
  }

  /**
   * Read up to `length` bytes at `position` of a regular file (fewer at its end): the way
   * to look at part of a large file (an ELF header, an initrd) without loading it.
   */
  async read(path: string, position: number, length: number): Promise<Uint8Array> {
    const p = guestPath(path);
    if (!Number.isSafeInteger(position) || position < 0 || !Number.isSafeInteger(length) || length < 0 || length > MAX_READ) {
      throw new ExtFsError('E_BAD_OFFSET', 'EINVAL', p, `cannot read ${length} bytes at ${position}`);
    }
    return this.call(p, async (fs) => {
      const { fd } = await fs.open(p, O.RDONLY | O.NOATIME);
      try {
        const st = toStat(await fs.fstat(fd));
        if (st.type === 'directory') throw pathError('EISDIR', p);
        const want = Math.max(0, Math.min(length, st.size - position));
        const out = new Uint8Array(want);
        let done = 0;
        while (done < want) {
          const n = Math.min(CHUNK, want - done);
          const buf = Buffer.alloc(n);
          const { bytesRead } = await fs.read(fd, buf, 0, n, position + done);
          if (bytesRead <= 0) throw new ExtFsError('E_CORRUPT', 'EIO', p, `file ends after ${position + done} of its ${st.size} bytes`);
          out.set(buf.subarray(0, bytesRead), done);
          done += bytesRead;
        }
        return out;
      } finally {
        await fs.close(fd);
      }
    });
  }

  async readText(path: string): Promise<string> {
    return Buffer.from(await this.readFile(path)).toString('utf8');
  }

  /**
   * Create or replace a file. Replacing keeps the inode, so its mode and owner stay;
   * `options` apply only to a file that did not exist.
   */
  async writeFile(path: string, data: Uint8Array | string, options: CreateOptions = {}): Promise<void> {
    await this.put(path, toBytes(data), false, options);
  }

  /** Append to a file, creating it (with `options`) when missing. */
  async append(path: string, data: Uint8Array | string, options: CreateOptions = {}): Promise<void> {
    await this.put(path, toBytes(data), true, options);
  }

  async mkdir(path: string, options: CreateOptions & { recursive?: boolean } = {}): Promise<void> {
    const p = guestPath(path);
    const mode = (options.mode ?? 0o755) & 0o7777;
    if (options.uid !== undefined) checkId(options.uid, 'uid', p);
    if (options.gid !== undefined) checkId(options.gid, 'gid', p);
    await this.call(p, async (fs) => {
      const targets: string[] = [];
      if (options.recursive) {
        for (let at = p.indexOf('/', 1); ; at = p.indexOf('/', at + 1)) {
          targets.push(at < 0 ? p : p.slice(0, at));
          if (at < 0) break;
        }
      } else {
        targets.push(p);
      }
      for (const dir of targets) {
        if (dir === '/') continue;
        const st = await statOrUndefined(fs, dir, true);
        if (st) {
          if (st.type !== 'directory') throw pathError(options.recursive ? 'ENOTDIR' : 'EEXIST', dir);
          if (!options.recursive) throw pathError('EEXIST', dir);
          continue;
        }
        await requireDirectory(fs, parentOf(dir));
        if (await statOrUndefined(fs, dir, false)) throw pathError('EEXIST', dir, 'exists as a dangling symbolic link');
        await wrap(dir, () => fs.mkdir(dir, mode));
        if (options.uid !== undefined || options.gid !== undefined) {
          const now = toStat(await fs.stat(dir));
          await wrap(dir, () => fs.chown(dir, options.uid ?? now.uid, options.gid ?? now.gid));
        }
      }
    }, true);
  }

  /** Names in a directory, without "." and "..", in directory order. */
  async readdir(path: string): Promise<string[]> {
    const p = guestPath(path);
    return this.call(p, async (fs) => {
      await requireDirectory(fs, p);
      return fs.readdir(p);
    });
  }

  /** Create `path` as a symbolic link to `target` (stored as given, not resolved). */
  async symlink(target: string, path: string): Promise<void> {
    const p = guestPath(path);
    if (typeof target !== 'string' || target.length === 0 || target.includes('\0')) {
      throw pathError('EINVAL', p, 'a symbolic link target must be a non-empty string without NUL');
    }
    if (target.endsWith('/')) {
      // The package strips trailing slashes from every path it passes, targets included.
      throw new ExtFsError('E_UNSUPPORTED', 'EINVAL', p, `libext2fs's glue would store "${target}" without its trailing slash`);
    }
    if (Buffer.byteLength(target) >= this.blockSize) throw pathError('ENAMETOOLONG', p, 'the link target does not fit one block');
    await this.call(p, async (fs) => {
      if (await statOrUndefined(fs, p, false)) throw pathError('EEXIST', p);
      await requireDirectory(fs, parentOf(p));
      await wrap(p, () => fs.symlink(target, p));
    }, true);
  }

  async readlink(path: string): Promise<string> {
    const p = guestPath(path);
    return this.call(p, async (fs) => {
      const st = toStat(await fs.lstat(p));
      if (st.type !== 'symlink') throw pathError('EINVAL', p, 'not a symbolic link');
      return fs.readlink(p);
    });
  }

  /** Change permission bits (follows a symbolic link, as chmod(2) does). */
  async chmod(path: string, mode: number): Promise<void> {
    const p = guestPath(path);
    await this.call(p, (fs) => fs.chmod(p, mode & 0o7777), true);
  }

  /** Change owner and group (follows a symbolic link, as chown(2) does). */
  async chown(path: string, uid: number, gid: number): Promise<void> {
    const p = guestPath(path);
    checkId(uid, 'uid', p);
    checkId(gid, 'gid', p);
    await this.call(p, (fs) => fs.chown(p, uid, gid), true);
  }

  /** Move `from` to `to`, replacing a file (or an empty directory) already at `to`. */
  async rename(from: string, to: string): Promise<void> {
    const src = guestPath(from);
    const dst = guestPath(to);
    await this.call(src, async (fs) => {
      const s = await statOrUndefined(fs, src, false);
      if (!s) throw pathError('ENOENT', src);
      if (src === '/' || dst === '/') throw pathError('EINVAL', src, 'cannot move the root directory');
      if (s.type === 'directory' && dst.startsWith(`${src}/`)) throw pathError('EINVAL', dst, 'cannot move a directory into itself');
      await requireDirectory(fs, parentOf(dst));
      const d = await statOrUndefined(fs, dst, false);
      if (d && d.type === 'directory' && s.type !== 'directory') throw pathError('EISDIR', dst);
      if (d && d.type !== 'directory' && s.type === 'directory') throw pathError('ENOTDIR', dst);
      await wrap(dst, () => fs.rename(src, dst));
    }, true);
  }

  /** Remove a file or symbolic link (not a directory: see rmdir). */
  async unlink(path: string): Promise<void> {
    const p = guestPath(path);
    await this.call(p, async (fs) => {
      const st = await statOrUndefined(fs, p, false);
      if (!st) throw pathError('ENOENT', p);
      if (st.type === 'directory') throw pathError('EISDIR', p);
      await fs.unlink(p);
    }, true);
  }

  /** Remove an empty directory. */
  async rmdir(path: string): Promise<void> {
    const p = guestPath(path);
    await this.call(p, async (fs) => {
      if (p === '/') throw pathError('EINVAL', p, 'cannot remove the root directory');
      const st = await statOrUndefined(fs, p, false);
      if (!st) throw pathError('ENOENT', p);
      if (st.type !== 'directory') throw pathError('ENOTDIR', p);
      await fs.rmdir(p);
    }, true);
  }

  /** Status of `path`, following symbolic links. */
  async stat(path: string): Promise<ExtStat> {
    const p = guestPath(path);
    return this.call(p, async (fs) => toStat(await fs.stat(p)));
  }

  /** Status of `path` itself, even when it is a symbolic link. */
  async lstat(path: string): Promise<ExtStat> {
    const p = guestPath(path);
    return this.call(p, async (fs) => toStat(await fs.lstat(p)));
  }

  /** True when something (even a dangling symbolic link) is at `path`. */
  async exists(path: string): Promise<boolean> {
    const p = guestPath(path);
    return this.call(p, async (fs) => (await statOrUndefined(fs, p, false)) !== undefined);
  }

  /**
   * Byte ranges of the filesystem (offsets from its start) that hold no file data or
   * metadata: the free blocks of the block bitmaps as they are now, including changes
   * not yet flushed. A copy may skip them.
   */
  async freeRanges(): Promise<Range[]> {
    return this.call('/', async () => {
      const mounted = this.mounted!;
      const ranges: Range[] = [];
      this.disk.recording = ranges;
      try {
        await mounted.trim();
      } finally {
        this.disk.recording = undefined;
      }
      return ranges;
    });
  }

  /** Write bitmaps, group descriptors and superblock to the overlay (libext2fs only does that on close). */
  async flush(): Promise<void> {
    await this.call('/', async () => {
      const ext2fs = loadExt2fs();
      const old = this.mounted!;
      this.mounted = undefined;
      await ext2fs.umount(old);
      this.mounted = await mount(this.disk);
    });
  }

  /** Flush and release libext2fs. The overlay (`device`) stays open and holds the result. */
  async close(): Promise<void> {
    if (!this.mounted) return;
    await exclusive(async () => {
      const m = this.mounted;
      if (!m) return;
      this.mounted = undefined;
      try {
        await loadExt2fs().umount(m);
      } catch (err) {
        throw this.translate(err, '/');
      }
    });
  }

  private async put(path: string, data: Uint8Array, append: boolean, options: CreateOptions): Promise<void> {
    const p = guestPath(path);
    if (data.length > MAX_FILE_SIZE) throw pathError('EFBIG', p, 'libext2fs\'s glue handles files below 2 GiB');
    if (options.uid !== undefined) checkId(options.uid, 'uid', p);
    if (options.gid !== undefined) checkId(options.gid, 'gid', p);
    await this.call(p, async (fs) => {
      const existing = await statOrUndefined(fs, p, true);
      if (existing) {
        if (existing.type === 'directory') throw pathError('EISDIR', p);
        if (existing.type !== 'file') throw pathError('EINVAL', p, `is a ${existing.type}, not a regular file`);
        if (append && existing.size + data.length > MAX_FILE_SIZE) throw pathError('EFBIG', p);
      } else {
        if (await statOrUndefined(fs, p, false)) throw pathError('EEXIST', p, 'exists as a dangling symbolic link');
        await requireDirectory(fs, parentOf(p));
      }
      const flags = O.WRONLY | O.CREAT | (append ? O.APPEND : O.TRUNC);
      const { fd } = await fs.open(p, flags, (options.mode ?? 0o644) & 0o7777);
      try {
        let done = 0;
        while (done < data.length) {
          const n = Math.min(CHUNK, data.length - done);
          const view = Buffer.from(data.buffer, data.byteOffset + done, n);
          const { bytesWritten } = await fs.write(fd, view, 0, n, append ? null : done);
          if (bytesWritten <= 0) throw pathError('ENOSPC', p);
          done += bytesWritten;
        }
      } finally {
        await fs.close(fd);
      }
      if (!existing && (options.uid !== undefined || options.gid !== undefined)) {
        await fs.chown(p, options.uid ?? 0, options.gid ?? 0);
      }
    }, true);
  }

  /** Run one operation alone, on the mounted filesystem, with errors turned into ExtFsErrors. */
  private call<T>(path: string, fn: (fs: FsPromises) => Promise<T>, writes = false): Promise<T> {
    if (writes && !this.writable) return Promise.reject(pathError('EROFS', path));
    return exclusive(async () => {
      const m = this.mounted;
      if (!m) throw new ImageError('E_CLOSED', 'this ext filesystem is closed', { structure: 'ext filesystem' });
      if (abortedWith) throw abortError(path, abortedWith, 'earlier');
      this.disk.lastError = undefined;
      try {
        return await fn(m.promises);
      } catch (err) {
        throw this.translate(err, path);
      }
    });
  }

  private translate(err: unknown, path: string): unknown {
    if (err instanceof ImageError) return err;
    // A WASM trap or abort (Aborted(OOM) on a directory cycle): libext2fs is gone, and
    // a stack of wasm frames means nothing to a user; name the guest path instead.
    if (isWasmAbort(err)) {
      abortedWith = err;
      return abortError(path, err, '');
    }
    if (isErrnoException(err)) {
      const cause = this.disk.lastError;
      if (err.code === 'EIO' && cause instanceof ImageError) {
        return new ExtFsError(cause.code, 'EIO', path, `the device failed: ${cause.message}`, cause);
      }
      return pathError(err.code, path, undefined, err);
    }
    return err;
  }
}

/**
 * The abort that stopped libext2fs in this process, if one did: the module's state is
 * undefined after it (a path that exists reads as missing), so every later call fails.
 */
let abortedWith: Error | undefined;

function abortError(path: string, err: Error, when: string): ExtFsError {
  const what = err.message.split('. ')[0];
  return new ExtFsError('E_CORRUPT', 'EABORT', path, `libext2fs aborted${when ? ` ${when}` : ''} (${what}): the filesystem is damaged or too large to handle`, err);
}

/** A WebAssembly.RuntimeError (the Node types here do not declare WebAssembly). */
function isWasmAbort(err: unknown): err is Error {
  return err instanceof Error && err.name === 'RuntimeError';
}

async function mount(disk: OverlayDisk): Promise<MountedFs> {
  try {
    return await loadExt2fs().mount(disk, 0);
  } catch (err) {
    if (disk.lastError instanceof ImageError) throw disk.lastError;
    const detail = isErrnoException(err) ? `${err.code} ${err.errno ?? ''}`.trim() : String(err);
    throw new ImageError('E_CORRUPT', `libext2fs cannot open this filesystem (${detail})`, { structure: 'ext filesystem', cause: err });
  }
}

async function statOrUndefined(fs: FsPromises, path: string, follow: boolean): Promise<ExtStat | undefined> {
  try {
    return toStat(await (follow ? fs.stat(path) : fs.lstat(path)));
  } catch (err) {
    if (isErrnoException(err) && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return undefined;
    throw err;
  }
}

async function requireDirectory(fs: FsPromises, path: string): Promise<void> {
  const st = await statOrUndefined(fs, path, true);
  if (!st) throw pathError('ENOENT', path);
  if (st.type !== 'directory') throw pathError('ENOTDIR', path);
}

async function wrap<T>(path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isErrnoException(err)) throw pathError(err.code, path, undefined, err);
    throw err;
  }
}
