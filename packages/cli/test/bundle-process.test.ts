import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng, requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import { binary } from './helpers.js';

// Issue 16: parts stream (peak RSS at most 200 MiB for a 2 GiB image, both ways), and a
// bundle or unbundle stopped by a signal leaves nothing at its destination.
let dir: TmpDir;
let image: string;
const SIZE = 2 * 1024 * 1024 * 1024;

beforeAll(async () => {
  dir = await tmpDir('amitrans-bundle-proc-');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', dir.file('k.pem'), '-out', dir.file('c.pem'), '-subj', '/CN=t', '-days', '2']);
  // 2 GiB, 64 runs of 1 MiB of random data spread over it, the rest holes.
  image = dir.file('two-gib.img');
  const fh = await open(image, 'w');
  await fh.truncate(SIZE);
  const rnd = prng(16);
  for (let i = 0; i < 64; i++) await fh.write(rnd.bytes(1024 * 1024), 0, 1024 * 1024, i * 32 * 1024 * 1024 + rnd.int(0, 1000) * 4096);
  await fh.close();
}, 60_000);
afterAll(async () => {
  await dir.remove();
});

/** Run the built binary under GNU time; resolves to its exit code and peak RSS in KiB. */
async function measured(args: string[]): Promise<{ code: number; rssKiB: number; stderr: string }> {
  const r = await new Promise<{ code: number; stderr: string }>((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'RSS=%M', process.execPath, binary(), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
  const m = /RSS=(\d+)/.exec(r.stderr);
  return { code: r.code, rssKiB: m ? Number(m[1]) : Infinity, stderr: r.stderr };
}

describe('bundle and unbundle of a 2 GiB image as processes', () => {
  it('peak RSS stays under 200 MiB both ways and the round trip is identical', async (ctx) => {
    requireTools(ctx, '/usr/bin/time', 'cmp', 'openssl');
    const b = await measured(['bundle', image, dir.file('out'), '--user', '1', '--arch', 'x86_64', '--ec2cert', dir.file('c.pem'), '-c', dir.file('c.pem'), '-k', dir.file('k.pem')]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.rssKiB).toBeLessThan(200 * 1024);
    const u = await measured(['unbundle', dir.file('out/two-gib.img.manifest.xml'), dir.file('back.img'), '-k', dir.file('k.pem'), '-c', dir.file('c.pem')]);
    expect(u.code, u.stderr).toBe(0);
    expect(u.rssKiB).toBeLessThan(200 * 1024);
    await run('cmp', [image, dir.file('back.img')]);
  }, 300_000);

  it('SIGINT in the middle leaves no part, no staging directory and no output', async (ctx) => {
    requireTools(ctx, 'openssl');
    const out = dir.file('int');
    const child = spawn(process.execPath, [binary(), 'bundle', image, out, '--user', '1', '--arch', 'x86_64', '--ec2cert', dir.file('c.pem'), '--part-size', '64K'], { stdio: 'ignore' });
    const closed = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    // Wait until parts are being written, then interrupt.
    for (let i = 0; i < 600; i++) {
      const staged = existsSync(out) ? readdirSync(out).filter((n) => n.endsWith('.partial')) : [];
      if (staged.length > 0 && readdirSync(`${out}/${staged[0]}`).length > 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGINT');
    const code = await closed;
    expect(code).toBe(130);
    expect(readdirSync(out)).toEqual([]);
  }, 120_000);

  it('after a SIGKILL the next bundle to the same place removes the staging directory left behind', async (ctx) => {
    requireTools(ctx, 'openssl');
    const out = dir.file('kill');
    const args = ['bundle', image, out, '--user', '1', '--arch', 'x86_64', '--ec2cert', dir.file('c.pem'), '--part-size', '64K'];
    const child = spawn(process.execPath, [binary(), ...args], { stdio: 'ignore' });
    const closed = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_c, signal) => resolve(signal)));
    const staged = (): string[] => (existsSync(out) ? readdirSync(out).filter((n) => n.endsWith('.partial')) : []);
    for (let i = 0; i < 600 && !(staged().length > 0 && readdirSync(`${out}/${staged()[0]}`).length > 2); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    expect(await closed).toBe('SIGKILL');
    expect(staged()).toHaveLength(1); // nothing can clean up after SIGKILL but the next run
    await run(process.execPath, [binary(), ...args]); // rejects on a non-zero exit
    expect(staged()).toEqual([]);
    expect(readdirSync(out)).toContain('two-gib.img.manifest.xml');
  }, 120_000);
});
