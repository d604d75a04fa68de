/** Fixture builders for the initrd tests: real trees packed by cpio(1) and compressed by the real tools. */
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { run } from '@amitrans/testkit';

export type TreeNode = string | Uint8Array | { link: string } | { dir: true };
export type Tree = Record<string, TreeNode>;

export async function makeTree(root: string, tree: Tree): Promise<void> {
  await mkdir(root, { recursive: true });
  for (const [path, node] of Object.entries(tree)) {
    const full = join(root, path);
    await mkdir(dirname(full), { recursive: true });
    if (typeof node === 'string' || node instanceof Uint8Array) await writeFile(full, node);
    else if ('link' in node) await symlink(node.link, full);
    else await mkdir(full, { recursive: true });
  }
}

export type CpioTool = 'newc' | 'crc' | 'odc' | 'bin';

/** Pack `tree` with `cpio -o -H <format>` into `out` (members sorted, "." included, as dracut does). */
export async function cpioOf(work: string, name: string, tree: Tree, format: CpioTool = 'newc'): Promise<string> {
  const root = join(work, `${name}.d`);
  await makeTree(root, tree);
  const out = join(work, `${name}.cpio`);
  await run('sh', ['-c', `cd "${root}" && find . | LC_ALL=C sort | cpio -o -H ${format} --quiet > "${out}"`]);
  return out;
}

export type Tool = 'gzip' | 'xz' | 'lzma' | 'zstd' | 'bzip2' | 'lz4';

const COMMANDS: Record<Tool, string> = {
  gzip: 'gzip -9 -n -c',
  xz: 'xz --check=crc32 -c',
  lzma: 'xz --format=lzma -c',
  zstd: 'zstd -q -19 -c',
  bzip2: 'bzip2 -9 -c',
  lz4: 'lz4 -l -q -c',
};

/** The Debian tools each compression needs (for requireTools). */
export const TOOLS: Record<Tool, string> = { gzip: 'gzip', xz: 'xz', lzma: 'xz', zstd: 'zstd', bzip2: 'bzip2', lz4: 'lz4' };

export async function compress(file: string, tool: Tool): Promise<string> {
  const out = `${file}.${tool}`;
  await run('sh', ['-c', `${COMMANDS[tool]} < "${file}" > "${out}"`]);
  return out;
}

/** Concatenate files into `out`, padding each to `align` bytes with zeros (0: no padding). */
export async function concat(out: string, files: string[], align = 0): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const f of files) {
    const b = await readFile(f);
    parts.push(b);
    if (align > 0 && b.length % align !== 0) parts.push(Buffer.alloc(align - (b.length % align)));
  }
  const all = Buffer.concat(parts);
  await writeFile(out, all);
  return all;
}

/** The member names cpio itself lists, made absolute the way the reader reports them. */
export async function cpioList(file: string): Promise<string[]> {
  const { stdout } = await run('sh', ['-c', `cpio -it --quiet < "${file}"`]);
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (l === '.' ? '/' : '/' + l.replace(/^\.\//, '')));
}

export interface NewcMember {
  name: string;
  mode?: number;
  data?: Uint8Array | string;
  /** Size to write in the header, when it should lie about the data. */
  claimedSize?: number;
  nameSize?: number;
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

/** A newc archive written by hand, for names and sizes cpio(1) will not produce. */
export function newc(members: NewcMember[], trailer = true): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    at += b.length;
  };
  const pad4 = (): void => {
    if (at % 4) push(Buffer.alloc(4 - (at % 4)));
  };
  const all = trailer ? [...members, { name: 'TRAILER!!!', mode: 0 }] : members;
  let ino = 1;
  for (const m of all) {
    const data = typeof m.data === 'string' ? Buffer.from(m.data) : Buffer.from(m.data ?? new Uint8Array(0));
    const name = Buffer.from(m.name + '\0');
    const fields = [ino++, m.mode ?? 0o100644, 0, 0, 1, 0, m.claimedSize ?? data.length, 0, 0, 0, 0, m.nameSize ?? name.length, 0];
    push(Buffer.from('070701' + fields.map(hex8).join('')));
    push(name);
    pad4();
    push(data);
    pad4();
  }
  return Buffer.concat(parts);
}
