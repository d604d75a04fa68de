import { ImageError } from '@amitrans/block';
import { normaliseMemberName } from './contents.js';
import { TRAILER } from './cpio.js';

/** One member to write: a regular file (data), a directory, or a symlink (linkTarget). */
export interface NewcMember {
  /** Archive path, written without a leading slash ("lib/modules/..."), as initramfs tools do. */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  /** Permission bits (the type bits come from `type`). */
  mode?: number;
  data?: Uint8Array;
  linkTarget?: string;
  mtime?: number;
}

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const encoder = new TextEncoder();

function hex8(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new ImageError('E_UNSUPPORTED', `cpio newc field ${n} does not fit 8 hex digits`, { structure: 'cpio' });
  return n.toString(16).toUpperCase().padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/** The newc header, name and padding of one member (070701: no checksum). */
function header(ino: number, mode: number, size: number, mtime: number, name: string): Uint8Array {
  const nameBytes = encoder.encode(name);
  // magic ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
  const fields = [ino, mode, 0, 0, (mode & S_IFDIR) === S_IFDIR ? 2 : 1, mtime, size, 0, 0, 0, 0, nameBytes.length + 1, 0];
  const text = '070701' + fields.map(hex8).join('');
  const out = new Uint8Array(110 + nameBytes.length + 1 + pad4(110 + nameBytes.length + 1));
  out.set(encoder.encode(text));
  out.set(nameBytes, 110);
  return out;
}

/** Parent directories of `path` ("a/b/c" -> ["a", "a/b"]). */
function parents(path: string): string[] {
  const parts = path.split('/');
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

/**
 * A complete newc archive (what the kernel unpacks) holding `members`, each preceded by
 * any parent directory not given explicitly (the kernel's unpacker does not create them),
 * (nor in `present`, absolute paths an archive this one continues already has) and the
 * TRAILER!!! entry. Inode numbers start at `firstIno`. Later members with a path the kernel already unpacked replace
 * the earlier file: that is how an appended segment overrides the original archive.
 */
export function writeNewcArchive(members: readonly NewcMember[], o: { present?: ReadonlySet<string>; firstIno?: number } = {}): Uint8Array {
  const chunks: Uint8Array[] = [];
  const written = new Set<string>();
  let ino = o.firstIno ?? 1;
  const emit = (m: NewcMember): void => {
    const path = normaliseMemberName(m.path).path.slice(1);
    if (path === '') throw new ImageError('E_UNSUPPORTED', 'a cpio member needs a name', { structure: 'cpio' });
    const data = m.type === 'file' ? (m.data ?? new Uint8Array(0)) : m.type === 'symlink' ? encoder.encode(m.linkTarget ?? '') : new Uint8Array(0);
    const type = m.type === 'file' ? S_IFREG : m.type === 'symlink' ? S_IFLNK : S_IFDIR;
    const perm = (m.mode ?? (m.type === 'directory' ? 0o755 : m.type === 'symlink' ? 0o777 : 0o644)) & 0o7777;
    chunks.push(header(ino++, type | perm, data.length, m.mtime ?? 0, path));
    chunks.push(data);
    if (pad4(data.length) > 0) chunks.push(new Uint8Array(pad4(data.length)));
    written.add(path);
  };
  for (const m of members) {
    const path = normaliseMemberName(m.path).path.slice(1);
    for (const dir of parents(path)) if (!written.has(dir) && !o.present?.has(`/${dir}`)) emit({ path: dir, type: 'directory' });
    emit(m);
  }
  chunks.push(header(0, 0, 0, 0, TRAILER));
  return Buffer.concat(chunks);
}
