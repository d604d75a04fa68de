import { run } from '@amitrans/testkit';

/** `dumpe2fs -h` as a map of "Key" -> "value" (the text after the colon, trimmed). */
export async function dumpe2fsHeader(target: string): Promise<Map<string, string>> {
  const { stdout } = await run('dumpe2fs', ['-h', target]);
  return parseDumpe2fs(stdout);
}

export function parseDumpe2fs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(line);
    if (m && !out.has(m[1]!)) out.set(m[1]!, m[2]!.trim());
  }
  return out;
}

export function num(fields: Map<string, string>, key: string): number {
  const v = fields.get(key);
  if (v === undefined) throw new Error(`dumpe2fs printed no "${key}"`);
  return Number(v);
}

export interface MkfsCase {
  name: string;
  tool: 'mkfs.ext2' | 'mkfs.ext3' | 'mkfs.ext4';
  args: string[];
}

/** The filesystems every test runs on: each kind, 128- and 256-byte inodes, with and without a label. */
export const MKFS_CASES: MkfsCase[] = [
  { name: 'ext2', tool: 'mkfs.ext2', args: [] },
  { name: 'ext2-labelled', tool: 'mkfs.ext2', args: ['-L', 'root'] },
  { name: 'ext2-rev0', tool: 'mkfs.ext2', args: ['-r', '0'] },
  { name: 'ext3-i128', tool: 'mkfs.ext3', args: ['-I', '128'] },
  { name: 'ext3-i128-labelled', tool: 'mkfs.ext3', args: ['-I', '128', '-L', 'cloudimg-rootfs'] },
  { name: 'ext3', tool: 'mkfs.ext3', args: [] },
  { name: 'ext3-labelled-4k', tool: 'mkfs.ext3', args: ['-L', '/', '-b', '4096'] },
  { name: 'ext4', tool: 'mkfs.ext4', args: [] },
  { name: 'ext4-labelled', tool: 'mkfs.ext4', args: ['-L', 'ümlaut'] },
  { name: 'ext4-no64bit-4k', tool: 'mkfs.ext4', args: ['-O', '^64bit,^metadata_csum', '-b', '4096'] },
];
