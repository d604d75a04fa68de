import { ImageError } from '@amitrans/block';
import { ExtFsError, type ExtFs } from '@amitrans/extfs';
import type { GuestFileType, GuestStat } from './fs.js';
import type { WritableGuestFs } from './translate/types.js';

const TYPE: Record<string, GuestFileType> = { file: 'file', directory: 'dir', symlink: 'symlink' };

/** The GuestFs view of an ext filesystem opened with @amitrans/extfs (writable when it was opened so). */
export function extGuestFs(ext: ExtFs): WritableGuestFs {
  return {
    writeFile: (path, data, options) => ext.writeFile(path, data, options ?? {}),
    unlink: (path) => ext.unlink(path),
    symlink: (target, path) => ext.symlink(target, path),
    mkdir: (path, options) => ext.mkdir(path, options ?? {}),
    async lstat(path: string): Promise<GuestStat | undefined> {
      try {
        const st = await ext.lstat(path);
        return { type: TYPE[st.type] ?? 'other', size: st.size, mode: st.mode, uid: st.uid, gid: st.gid, ino: st.ino };
      } catch (err) {
        if (err instanceof ExtFsError && (err.errno === 'ENOENT' || err.errno === 'ENOTDIR')) return undefined;
        throw err;
      }
    },
    readlink: (path) => ext.readlink(path),
    async readdir(path: string): Promise<string[]> {
      try {
        return await ext.readdir(path);
      } catch (err) {
        // A damaged directory reads as empty; a libext2fs abort stops everything.
        if (err instanceof ImageError && !(err instanceof ExtFsError && err.errno === 'EABORT')) return [];
        throw err;
      }
    },
    read: (path, position, length) => ext.read(path, position, length),
  };
}
