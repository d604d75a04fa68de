/**
 * Shared test helpers: oracle tools, commands, temporary files, seeded random sparse
 * images. Not published; every package's tests use it.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const toolCache = new Map<string, boolean>();

export function hasTool(tool: string): boolean {
  let found = toolCache.get(tool);
  if (found === undefined) {
    const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };
    found = spawnSync('sh', ['-c', `command -v ${tool}`], { env }).status === 0;
    toolCache.set(tool, found);
  }
  return found;
}

/**
 * Make sure oracle tools are installed. Under CI=true a missing oracle fails the test;
 * elsewhere the test is skipped with a loud message, never silently.
 */
export function requireTools(ctx: { skip: (note?: string) => void }, ...tools: string[]): void {
  const missing = tools.filter((t) => !hasTool(t));
  if (missing.length === 0) return;
  const msg = `oracle tool(s) missing: ${missing.join(', ')} (run: bash scripts/setup-test-env.sh)`;
  if (process.env.CI) throw new Error(`${msg}; oracles never skip under CI=true`);
  console.warn(`\n*** SKIPPED: ${msg} ***\n`);
  ctx.skip(msg);
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Run a command; rejects with its stderr when it exits non-zero. /usr/sbin is on PATH. */
export function run(cmd: string, args: readonly string[], options: { input?: string; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin`, LC_ALL: 'C' };
    const child = execFile(cmd, args, { env, cwd: options.cwd, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve({ stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Run a command and resolve with its exit code and output, whatever the code. */
export function runStatus(cmd: string, args: readonly string[], options: { input?: string } = {}): Promise<RunResult & { code: number }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin`, LC_ALL: 'C' };
    const child = execFile(cmd, args, { env, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(err);
      else resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

export interface TmpDir {
  path: string;
  file(name: string): string;
  remove(): Promise<void>;
}

export async function tmpDir(prefix = 'amitrans-test-'): Promise<TmpDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, file: (name) => join(path, name), remove: () => rm(path, { recursive: true, force: true }) };
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A small, fast, seeded PRNG (mulberry32) so property tests replay exactly. */
export function prng(seed: number): { next(): number; int(lo: number, hi: number): number; bytes(n: number): Uint8Array } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    bytes: (n) => {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i += 4) {
        const v = Math.floor(next() * 4294967296);
        out[i] = v & 0xff;
        if (i + 1 < n) out[i + 1] = (v >>> 8) & 0xff;
        if (i + 2 < n) out[i + 2] = (v >>> 16) & 0xff;
        if (i + 3 < n) out[i + 3] = (v >>> 24) & 0xff;
      }
      return out;
    },
  };
}

export type RunKind = 'data' | 'zero' | 'hole';

export interface SparseLayout {
  size: number;
  runs: { offset: number; length: number; kind: RunKind }[];
}

/**
 * Write a file of `size` bytes made of random runs: random data, explicitly written zeros,
 * and holes left by truncate. Run boundaries fall on 512-byte sectors, and some runs are
 * shorter than 4 KiB, so writers' zero detection and block regrouping are exercised.
 */
export async function writeSparseImage(path: string, size: number, seed: number): Promise<SparseLayout> {
  const rnd = prng(seed);
  const runs: SparseLayout['runs'] = [];
  const fh = await open(path, 'w');
  try {
    await fh.truncate(size);
    let at = 0;
    while (at < size) {
      const sectors = rnd.next() < 0.3 ? rnd.int(1, 8) : rnd.int(8, 8192);
      const length = Math.min(size - at, sectors * 512);
      const r = rnd.next();
      const kind: RunKind = r < 0.45 ? 'data' : r < 0.65 ? 'zero' : 'hole';
      if (kind !== 'hole') {
        const buf = kind === 'data' ? rnd.bytes(length) : new Uint8Array(length);
        await fh.write(buf, 0, length, at);
      }
      runs.push({ offset: at, length, kind });
      at += length;
    }
  } finally {
    await fh.close();
  }
  return { size, runs };
}

export * from './oracles.js';

const REPO_ROOT = new URL('../../../', import.meta.url).pathname;

/**
 * The unpacked root of a Debian package fetched by scripts/setup-test-env.sh
 * (.tmp/debs/<name>/root). Missing: fails under CI=true, skips loudly elsewhere.
 */
export function debRoot(ctx: { skip: (note?: string) => void }, name: string): string {
  const root = `${REPO_ROOT}.tmp/debs/${name}/root`;
  if (spawnSync('test', ['-f', `${REPO_ROOT}.tmp/debs/${name}/.done`]).status === 0) return root;
  const msg = `Debian package ${name} is not unpacked under .tmp/debs (run: bash scripts/setup-test-env.sh)`;
  if (process.env.CI) throw new Error(`${msg}; fixtures never skip under CI=true`);
  console.warn(`\n*** SKIPPED: ${msg} ***\n`);
  ctx.skip(msg);
  return root;
}
/**
 * grub-legacy's shell (an i386 binary) as a command and its leading arguments: run directly
 * where the kernel runs 32-bit code, else under qemu-i386 (setup-test-env.sh installs
 * qemu-user on kernels built without IA32 emulation, as on this project's CI machines).
 */
export function grubShell(ctx: { skip: (note?: string) => void }): { cmd: string; args: string[] } {
  const grub = `${debRoot(ctx, 'grub-legacy')}/usr/sbin/grub`;
  if (spawnSync(grub, ['--version']).status === 0) return { cmd: grub, args: [] };
  if (spawnSync('qemu-i386', ['-L', '/', grub, '--version']).status === 0) return { cmd: 'qemu-i386', args: ['-L', '/', grub] };
  const msg = 'grub-legacy\'s 32-bit shell cannot run here and qemu-i386 is missing (run: bash scripts/setup-test-env.sh)';
  if (process.env.CI) throw new Error(`${msg}; oracles never skip under CI=true`);
  console.warn(`\n*** SKIPPED: ${msg} ***\n`);
  ctx.skip(msg);
  return { cmd: grub, args: [] };
}
export * from './fixtures.js';
export * from './sources.js';
export * from './guarded.js';
export * from './guests.js';
export * from './listings.js';
export * from './remote.js';
export * from './sinks.js';
