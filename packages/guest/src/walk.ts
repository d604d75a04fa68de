import { ImageError } from '@amitrans/block';
import type { GuestFs } from './fs.js';

/**
 * What one walk over a guest directory tree may cost. A hostile guest can hold millions
 * of entries, a path nested thousands deep, or a directory hard-linked into itself (ext
 * forbids it, debugfs `link` makes it): each would otherwise cost minutes and finally a
 * libext2fs abort. Defaults are far beyond a real /var/log or /lib/modules tree.
 */
export interface WalkBudget {
  /** Directory entries read, in all. */
  entries: number;
  /** Directories below the start. */
  depth: number;
  /** Wall-clock milliseconds for the walk. */
  ms: number;
}

/** `entries` by default; AMITRANS_GUEST_WALK_ENTRIES and AMITRANS_GUEST_WALK_SECONDS (120) override. */
export function walkBudget(entries: number): WalkBudget {
  const setting = (name: string, fallback: number): number => {
    const v = Number(process.env[name]);
    return Number.isFinite(v) && v > 0 ? v : fallback;
  };
  return { entries: setting('AMITRANS_GUEST_WALK_ENTRIES', entries), depth: 64, ms: setting('AMITRANS_GUEST_WALK_SECONDS', 120) * 1000 };
}

/** A walk that ran past its budget: the caller decides whether that is a warning or fatal. */
export class WalkBudgetError extends ImageError {
  constructor(root: string, what: string) {
    super('E_TOO_LARGE', `${root}: ${what}; not walked further`, { structure: root });
    this.name = 'WalkBudgetError';
  }
}

/**
 * Visit every non-directory entry under `root` (lstat semantics: symbolic links are
 * visited, never followed). A directory met twice (the same inode) is a directory hard
 * link making a cycle: an E_LOOP ImageError naming both paths, since walking on would
 * never end and the filesystem is damaged. Over the budget: a WalkBudgetError.
 */
export async function walkTree(fs: GuestFs, root: string, visit: (path: string) => Promise<void>, budget: WalkBudget): Promise<void> {
  const top = await fs.lstat(root);
  if (top?.type !== 'dir') return;
  const seen = new Map<number, string>();
  if (top.ino !== undefined) seen.set(top.ino, root);
  const started = Date.now();
  const stack: [string, number][] = [[root, 0]];
  let entries = 0;
  while (stack.length > 0) {
    const [dir, depth] = stack.pop()!;
    for (const name of await fs.readdir(dir)) {
      if (name === '.' || name === '..') continue;
      if (++entries > budget.entries) throw new WalkBudgetError(root, `more than ${budget.entries} entries (AMITRANS_GUEST_WALK_ENTRIES)`);
      if (Date.now() - started > budget.ms) throw new WalkBudgetError(root, `walking took over ${budget.ms / 1000} s (AMITRANS_GUEST_WALK_SECONDS)`);
      const path = `${dir === '/' ? '' : dir}/${name}`;
      const st = await fs.lstat(path);
      if (st?.type !== 'dir') {
        if (st) await visit(path);
        continue;
      }
      const first = st.ino === undefined ? undefined : seen.get(st.ino);
      if (first !== undefined) {
        throw new ImageError('E_LOOP', `another hard link to directory ${first} (inode ${st.ino}): a cycle, not followed; the filesystem is damaged (e2fsck -f repairs it)`, { structure: path });
      }
      if (st.ino !== undefined) seen.set(st.ino, path);
      if (depth + 1 > budget.depth) throw new WalkBudgetError(root, `directories nested more than ${budget.depth} deep (${path})`);
      stack.push([path, depth + 1]);
    }
  }
}
