import { spawn } from 'node:child_process';
import { copyFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuestImage, centos5Guest, debRoot, requireTools, run, runStatus, tmpDir, type TmpDir } from '@amitrans/testkit';
import { binary } from './helpers.js';

// Issue 22: walking a guest's directories is bounded. A directory hard-linked into itself
// (debugfs `link /var/log /var/log/cycle`) used to be walked for minutes until libext2fs
// aborted with Aborted(OOM) and a wasm stack; it is now a one-line typed error naming the
// guest path. A walk over its entry or depth budget cleans what it saw and says so.
let dir: TmpDir;
let guest: string;
beforeAll(async () => {
  dir = await tmpDir();
  const g = centos5Guest({ plainKernel: true });
  guest = dir.file('guest.img');
  await buildGuestImage(g.spec, guest, g.image);
}, 120_000);
afterAll(async () => {
  await dir.remove();
});

/** A copy of the guest with debugfs commands applied (debugfs is the oracle's own tool). */
async function variant(name: string, commands: string[]): Promise<string> {
  const img = dir.file(name);
  await copyFile(guest, img);
  await run('debugfs', ['-w', '-f', '-', img], { input: `${commands.join('\n')}\n` });
  return img;
}

function translate(ctx: { skip: (note?: string) => void }, img: string, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const grubDir = `${debRoot(ctx, 'grub-legacy')}/usr/lib/grub/x86_64-pc`;
  const args = [binary(), 'translate', img, `${img}.out.qcow2`, '-t', 'kvm', '--grub-dir', grubDir, '--json'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const LOGS = ['mkdir /var', 'mkdir /var/log', 'write /etc/fstab /var/log/messages'];

describe('guest walks are bounded', () => {
  it('a directory hard-link cycle is a typed error naming the guest path, not a WASM abort', async (ctx) => {
    requireTools(ctx, 'debugfs');
    const img = await variant('cycle.img', [...LOGS, 'link /var/log /var/log/cycle']);
    const r = await translate(ctx, img);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      `amitrans: ${img}: /var/log/cycle: another hard link to directory /var/log (inode ${/inode (\d+)/.exec(r.stderr)?.[1]}): a cycle, not followed; the filesystem is damaged (e2fsck -f repairs it)`,
    ]);
    // e2fsck, the oracle, agrees the filesystem is damaged that way.
    const fsck = await runStatus('e2fsck', ['-fn', img]);
    expect(fsck.code).toBe(4);
    expect(fsck.stdout).toMatch(/Entry 'cycle' in \/var\/log \(\d+\) is a link to directory \/var\/log/);
  }, 60_000);

  it('over the entry budget: what was seen is cleaned, the rest reported as skipped', async (ctx) => {
    requireTools(ctx, 'debugfs');
    const img = await variant('many.img', [...LOGS, ...Array.from({ length: 9 }, (_, i) => `write /etc/fstab /var/log/old.${i}`)]);
    const r = await translate(ctx, img, { AMITRANS_GUEST_WALK_ENTRIES: '4' });
    expect(r.code, r.stderr).toBe(0);
    const changes = (JSON.parse(r.stdout) as { changes: { step: string; file: string; action: string; why: string }[] }).changes;
    expect(changes.filter((c) => c.step === 'clean' && c.file.startsWith('/var/log/') && c.action === 'truncate')).toHaveLength(4);
    expect(changes).toContainEqual({ step: 'clean', file: '/var/log', action: 'skip', why: expect.stringMatching(/more than 4 entries .*not cleaned, check it by hand/) });
  }, 60_000);

  it('nested deeper than the depth budget: reported as skipped', async (ctx) => {
    requireTools(ctx, 'debugfs');
    let path = '/var/log';
    const cmds = [...LOGS];
    for (let i = 0; i < 70; i++) {
      path += '/d';
      cmds.push(`mkdir ${path}`);
    }
    const r = await translate(ctx, await variant('deep.img', cmds));
    expect(r.code, r.stderr).toBe(0);
    const changes = (JSON.parse(r.stdout) as { changes: { step: string; file: string; action: string; why: string }[] }).changes;
    expect(changes).toContainEqual({ step: 'clean', file: '/var/log', action: 'skip', why: expect.stringMatching(/nested more than 64 deep/) });
  }, 60_000);
});
