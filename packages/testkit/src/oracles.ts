/** Thin wrappers around the oracle tools, returning their own view of an image. */
import { open } from 'node:fs/promises';
import { run, runStatus } from './index.js';

export interface SfdiskPartition {
  node: string;
  start: number;
  size: number;
  type: string;
  bootable?: boolean;
  uuid?: string;
  name?: string;
  attrs?: string;
}

export interface SfdiskTable {
  label: 'dos' | 'gpt';
  id: string;
  device: string;
  unit: string;
  sectorsize?: number;
  firstlba?: number;
  lastlba?: number;
  /** Empty when the table has none (sfdisk then omits the key). */
  partitions: SfdiskPartition[];
}

/** `sfdisk --json` of an image file. */
export async function sfdiskJson(path: string): Promise<SfdiskTable> {
  const { stdout } = await run('sfdisk', ['--json', path]);
  const t = (JSON.parse(stdout) as { partitiontable: SfdiskTable }).partitiontable;
  return { ...t, partitions: t.partitions ?? [] };
}

/** Create a sparse file of `size` bytes and partition it with an sfdisk script. */
export async function sfdiskImage(path: string, size: number, script: string): Promise<void> {
  const fh = await open(path, 'w');
  await fh.truncate(size);
  await fh.close();
  await run('sfdisk', ['--no-reread', '--no-tell-kernel', '--wipe', 'always', '-q', path], { input: script });
}

/** `dumpe2fs -h` as a map from its field names ("Block count") to their values. */
export async function dumpe2fsHeader(path: string): Promise<Map<string, string>> {
  const { stdout } = await run('dumpe2fs', ['-h', path]);
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(line);
    if (m) out.set(m[1]!.trim(), m[2]!.trim());
  }
  return out;
}

export interface QemuImgInfo {
  format: string;
  'virtual-size': number;
  'actual-size'?: number;
  'format-specific'?: { type: string; data: Record<string, unknown> };
  [key: string]: unknown;
}

export async function qemuImgInfo(path: string, format?: string): Promise<QemuImgInfo> {
  const args = ['info', '--output=json', ...(format ? ['-f', format] : []), path];
  return JSON.parse((await run('qemu-img', args)).stdout) as QemuImgInfo;
}

/** `qemu-img compare`: true when identical, false when the contents differ; throws on errors. */
export async function qemuImgCompare(a: string, aFormat: string, b: string, bFormat: string): Promise<boolean> {
  const r = await runStatus('qemu-img', ['compare', '-f', aFormat, '-F', bFormat, a, b]);
  if (r.code === 0) return true;
  if (r.code === 1) return false;
  throw new Error(`qemu-img compare ${a} ${b} failed (exit ${r.code}): ${r.stderr}`);
}

/** `qemu-img check` output; resolves with the exit code (0 clean) and the text. */
export async function qemuImgCheck(path: string, format: string): Promise<{ code: number; output: string }> {
  const r = await runStatus('qemu-img', ['check', '-f', format, path]);
  return { code: r.code, output: r.stdout + r.stderr };
}
