import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import { binary } from './helpers.js';

// Issue 22: decompression is held to a budget (ratio past the first GiB, total bytes,
// time), so a bomb ends in a one-line typed error naming the input, with no temporary left,
// instead of minutes of work (128 GiB bzip2/xz bombs ran past 120 s).
let dir: TmpDir;
const bombs: Record<string, string> = {};
const CHUNKS = 64; // copies of 64 MiB of zeros: 4 GiB decompressed

beforeAll(async () => {
  dir = await tmpDir();
  await writeFile(dir.file('zeros'), Buffer.alloc(64 * 1024 * 1024));
  // Each format allows concatenated streams: one small stream of zeros, repeated.
  for (const [ext, tool] of [['gz', 'gzip'], ['bz2', 'bzip2'], ['xz', 'xz']] as const) {
    await run(tool, ['-k', '-f', dir.file('zeros')]);
    const one = await readFile(dir.file(`zeros.${ext}`));
    bombs[ext] = dir.file(`bomb.raw.${ext}`);
    await writeFile(bombs[ext], Buffer.concat(Array.from({ length: CHUNKS }, () => one)));
  }
}, 120_000);
afterAll(async () => {
  await dir.remove();
});

async function info(file: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string; temps: string[] }> {
  const tmp = dir.file(`tmp-${Math.random().toString(36).slice(2)}`);
  await mkdir(tmp);
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [binary(), 'info', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, AMITRANS_TMPDIR: tmp, ...env } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
  return { ...r, temps: await readdir(tmp) };
}

function expectStopped(r: { code: number | null; stderr: string; temps: string[] }, file: string, why: RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toContain(`amitrans: ${file}: `);
  expect(r.stderr).toMatch(why);
  expect(r.temps).toEqual([]);
}

describe('decompression bombs are stopped by the decompression budget', () => {
  for (const ext of ['bz2', 'xz'] as const) {
    it(`a ${ext} bomb: over 1100 times its size past the first GiB`, async (ctx) => {
      requireTools(ctx, 'bzip2', 'xz');
      const r = await info(bombs[ext]!, {});
      expectStopped(r, bombs[ext]!, new RegExp(`${ext === 'bz2' ? 'bzip2' : 'xz'} stream: expands more than 1100 times .* a decompression bomb, or set AMITRANS_DECOMPRESS_MAX_RATIO`));
    }, 120_000);
  }

  it('gzip, which cannot pass the ratio: the byte budget', async (ctx) => {
    requireTools(ctx, 'gzip');
    const r = await info(bombs.gz!, { AMITRANS_DECOMPRESS_MAX_GIB: '1' });
    expectStopped(r, bombs.gz!, /gzip stream: expands past 1 GiB, the decompression budget \(AMITRANS_DECOMPRESS_MAX_GIB\)/);
  }, 120_000);

  it('the time budget', async (ctx) => {
    requireTools(ctx, 'gzip');
    const r = await info(bombs.gz!, { AMITRANS_DECOMPRESS_SECONDS: '0.2' });
    expectStopped(r, bombs.gz!, /gzip stream: took over 0.2 s to decompress .*AMITRANS_DECOMPRESS_SECONDS/);
  }, 120_000);

  it('within the budget, the same gzip is read whole', async (ctx) => {
    requireTools(ctx, 'gzip');
    const r = await info(dir.file('zeros.gz'), {});
    expect(r.code, r.stderr).toBe(0);
  });
});
