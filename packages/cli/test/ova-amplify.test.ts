import { open, readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTools, run, tmpDir, writeSparseImage, type TmpDir } from '@amitrans/testkit';
import { cli } from './helpers.js';

// Issue 22: work an OVA can demand is linear in what it holds. A manifest naming one
// member 2,000 times hashed it 2,000 times (118 s for a 64 MiB member); an OVA followed by
// 20 GiB of zeros was scanned at 20 s per GiB. Each member is now hashed once per
// algorithm, and zeros are checked for 64 MiB past the end-of-archive blocks.
let dir: TmpDir;
let members: string;
let lines: string[];

const MIB = 1024 * 1024;

beforeAll(async () => {
  dir = await tmpDir();
  const raw = dir.file('r.raw');
  await writeSparseImage(raw, 32 * MIB, 5);
  expect((await cli('convert', raw, dir.file('r.ova'))).code).toBe(0);
  members = dir.file('members');
  await run('mkdir', ['-p', members]);
  await run('tar', ['-xf', dir.file('r.ova'), '-C', members]);
  lines = (await readFile(`${members}/r.mf`, 'utf8')).trim().split('\n');
}, 60_000);
afterAll(async () => {
  await dir.remove();
});

/** An OVA of the same OVF and disk whose manifest is `manifest`, written by GNU tar. */
async function repack(name: string, manifest: string): Promise<string> {
  await writeFile(`${members}/r.mf`, manifest);
  const ova = dir.file(name);
  await run('tar', ['--format=ustar', '-cf', ova, '-C', members, 'r.ovf', 'r-disk001.vmdk', 'r.mf']);
  return ova;
}

describe('OVA amplification is linear', () => {
  it('a manifest naming the disk 2,000 times: each line checked, the disk hashed once', async (ctx) => {
    requireTools(ctx, 'tar');
    const disk = lines.find((l) => l.includes('.vmdk'))!;
    const many = await repack('many.ova', `${lines[0]}\n${Array.from({ length: 2000 }, () => disk).join('\n')}\n`);
    const r = await cli('info', many, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { format: string }).format).toBe('ova');
    // A wrong digest on the last repeat is still found.
    const wrong = disk.replace(/= [0-9a-f]+$/, `= ${'0'.repeat(40)}`);
    const bad = await repack('bad.ova', `${lines[0]}\n${Array.from({ length: 1999 }, () => disk).join('\n')}\n${wrong}\n`);
    const b = await cli('info', bad);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/SHA1 of r-disk001.vmdk is [0-9a-f]{40}, the manifest says 0{40}/);
  }, 60_000);

  it('20 GiB of zeros after the archive are not read; data within 64 MiB of its end is still an error', async (ctx) => {
    requireTools(ctx, 'tar');
    const ova = await repack('tail.ova', `${lines.join('\n')}\n`);
    const end = (await readFile(ova)).length;
    const fh = await open(ova, 'r+');
    await fh.truncate(end + 20 * 1024 * MIB);
    await fh.close();
    const r = await cli('info', ova);
    expect(r.code, r.stderr).toBe(0);
    const dirty = await repack('dirty.ova', `${lines.join('\n')}\n`);
    const d = await open(dirty, 'r+');
    await d.write(Buffer.from('junk'), 0, 4, end + 32 * MIB);
    await d.close();
    const j = await cli('info', dirty);
    expect(j.code).toBe(1);
    expect(j.stderr).toMatch(new RegExp(`data at byte ${end + 32 * MIB} after the end-of-archive blocks`));
  }, 60_000);
});
