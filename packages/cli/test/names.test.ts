import { spawn, spawnSync } from 'node:child_process';
import { mkdir, open, readdir, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng, requireTools, run, tmpDir, writeSparseImage, type TmpDir } from '@amitrans/testkit';
import { binary, cli } from './helpers.js';

// Issue 22: tables read lazily, in the middle of a copy, still name the file the error
// is in (the message used to start at "qcow2 L2 entry at byte ...").
let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(async () => {
  await dir.remove();
});

describe('errors found after opening name the file', () => {
  it('a qcow2 L2 entry past the end of the file, met while converting', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    const raw = dir.file('src.raw');
    await writeSparseImage(raw, 8 * 1024 * 1024, 3);
    const q = dir.file('bad-l2.qcow2');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, q]);
    const fh = await open(q, 'r+');
    const head = Buffer.alloc(64);
    await fh.read(head, 0, 64, 0);
    const l1 = Number(head.readBigUInt64BE(40));
    const entry = Buffer.alloc(8);
    await fh.read(entry, 0, 8, l1);
    const l2 = Number(entry.readBigUInt64BE(0) & 0x00fffffffffffe00n);
    // The first data cluster's entry points far past the end of the file.
    const bad = Buffer.alloc(8);
    bad.writeBigUInt64BE(0x8000000000000000n | (1n << 40n));
    await fh.write(bad, 0, 8, l2);
    await fh.close();
    const r = await cli('convert', q, dir.file('out.raw'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^amitrans: ${q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: qcow2`));
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

/** A 1 MiB tmpfs (root only; CI runs as root and never skips it). */
function smallFilesystem(ctx: { skip: (note?: string) => void }, path: string): () => void {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', path], { encoding: 'utf8' });
  if (r.status !== 0) {
    const msg = `cannot mount a tmpfs (${r.stderr.trim()}): the ENOSPC checks need root`;
    if (process.env.CI) throw new Error(`${msg}; never skipped under CI=true`);
    ctx.skip(msg);
  }
  return () => void spawnSync('umount', [path]);
}

function runWith(env: Record<string, string>, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binary(), ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('a full disk names the file and the side that failed', () => {
  it('the output, and the temporary copy of a compressed input (not "damaged" input)', async (ctx) => {
    requireTools(ctx, 'gzip');
    const full = dir.file('full');
    await mkdir(full, { recursive: true });
    const unmount = smallFilesystem(ctx, full);
    try {
      const src = dir.file('big.raw');
      await writeFile(src, prng(11).bytes(4 * 1024 * 1024)); // data, no holes: more than the 1 MiB
      await run('gzip', ['-k', '-1', src]);
      const out = await runWith({}, ['convert', src, `${full}/out.raw`]);
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(new RegExp(`^amitrans: ${full}/out\\.raw: byte \\d+: cannot write the output: no space left on the device \\(ENOSPC\\)\n$`));
      const temp = await runWith({ AMITRANS_TMPDIR: full }, ['convert', `${src}.gz`, dir.file('from-gz.raw')]);
      expect(temp.code).toBe(1);
      expect(temp.stderr).toMatch(/cannot write the decompressed copy of .*big\.raw\.gz .*no space left on the device/);
      expect(temp.stderr).not.toMatch(/damaged/);
      expect(await readdir(full)).toEqual([]);
    } finally {
      unmount();
    }
  });
});
