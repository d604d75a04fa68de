import { ImageError } from '@amitrans/block';

export type GuestFileType = 'file' | 'dir' | 'symlink' | 'other';

export interface GuestStat {
  type: GuestFileType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  /** The inode number, where the filesystem has one: finds a directory met twice (a cycle). */
  ino?: number;
}

/**
 * What inspection needs from a guest filesystem. Paths are absolute guest paths; no call
 * follows symlinks (lstat semantics): `resolve` below does that safely, inside the guest.
 */
export interface GuestFs {
  lstat(path: string): Promise<GuestStat | undefined>;
  readlink(path: string): Promise<string>;
  readdir(path: string): Promise<string[]>;
  /** Read `length` bytes at `position` of a regular file (short at end of file). */
  read(path: string, position: number, length: number): Promise<Uint8Array>;
}

const MAX_HOPS = 40;

export function normalize(path: string): string {
  const parts: string[] = [];
  for (const p of path.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return `/${parts.join('/')}`;
}

export function dirnameOf(path: string): string {
  const n = normalize(path);
  return n === '/' ? '/' : n.slice(0, n.lastIndexOf('/')) || '/';
}

/**
 * Resolve symlinks component by component, as the guest kernel would with the guest root
 * as "/": absolute targets restart at the guest root, `..` never leaves it, and more than
 * 40 links is a loop. Resolves to undefined when something on the way does not exist.
 */
export async function resolve(fs: GuestFs, path: string): Promise<{ path: string; stat: GuestStat } | undefined> {
  let hops = 0;
  let pending = normalize(path).split('/').filter(Boolean);
  let done: string[] = [];
  let stat: GuestStat | undefined = { type: 'dir', size: 0, mode: 0o40755, uid: 0, gid: 0 };
  while (pending.length > 0) {
    const name = pending.shift()!;
    const candidate = `/${[...done, name].join('/')}`;
    stat = await fs.lstat(candidate);
    if (!stat) return undefined;
    if (stat.type === 'symlink') {
      if (++hops > MAX_HOPS) throw new ImageError('E_LOOP', `too many levels of symbolic links resolving ${path}`, { structure: path });
      const target = await fs.readlink(candidate);
      const parts = target.split('/').filter((p) => p !== '' && p !== '.');
      if (target.startsWith('/')) done = [];
      // Apply the target's components before what was left of the path.
      const expanded: string[] = [];
      for (const p of parts) expanded.push(p);
      pending = [...expanded, ...pending];
      // '..' in a link target is handled as we go.
      while (pending[0] === '..') {
        pending.shift();
        done.pop();
      }
      continue;
    }
    done.push(name);
    while (pending[0] === '..') {
      pending.shift();
      done.pop();
    }
    if (pending.length > 0 && stat.type !== 'dir') return undefined;
  }
  const finalPath = `/${done.join('/')}`;
  if (done.length === 0) stat = (await fs.lstat('/')) ?? stat;
  return { path: finalPath, stat: stat! };
}

/** Default cap for config files read whole: anything larger is suspicious in /etc. */
export const TEXT_CAP = 1024 * 1024;

export interface ReadTextResult {
  text: string;
  truncated: boolean;
  path: string;
}

/** Read a text file through symlinks, at most `cap` bytes. Undefined when missing or not a file. */
export async function readText(fs: GuestFs, path: string, cap = TEXT_CAP): Promise<ReadTextResult | undefined> {
  const r = await resolve(fs, path);
  if (!r || r.stat.type !== 'file') return undefined;
  const length = Math.min(r.stat.size, cap);
  const bytes = length > 0 ? await fs.read(r.path, 0, length) : new Uint8Array(0);
  return { text: Buffer.from(bytes).toString('utf8'), truncated: r.stat.size > cap, path: r.path };
}

/**
 * readText for inspection: a hostile file (a link loop, a damaged inode) becomes a warning
 * and undefined, so one bad file costs its own facts, not its neighbours'.
 */
export async function readTextOrWarn(fs: GuestFs, path: string, warnings: string[], cap = TEXT_CAP): Promise<ReadTextResult | undefined> {
  try {
    return await readText(fs, path, cap);
  } catch (err) {
    if (!(err instanceof ImageError)) throw err;
    warnings.push(err.message.startsWith(`${path}: `) ? err.message : `${path}: ${err.message}`);
    return undefined;
  }
}

export async function exists(fs: GuestFs, path: string): Promise<boolean> {
  try {
    return (await resolve(fs, path)) !== undefined;
  } catch {
    return false;
  }
}

/** Directory entries (no . and ..), through symlinks; empty when missing. */
export async function list(fs: GuestFs, path: string): Promise<string[]> {
  const r = await resolve(fs, path).catch(() => undefined);
  if (!r || r.stat.type !== 'dir') return [];
  return (await fs.readdir(r.path)).filter((n) => n !== '.' && n !== '..').sort();
}
