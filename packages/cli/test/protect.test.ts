import { execFileSync } from 'node:child_process';
import { link, lstat, mkdir, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuestImage, centos5Guest, requireTools, run, sha256File, tmpDir, writeSparseImage, type TmpDir } from '@amitrans/testkit';
import { cli, runBin } from './helpers.js';

// Issue 22's first promise: an output never replaces an input or a device node, and an
// input that is not a regular file or a block device is refused at once (a FIFO would
// otherwise block forever, /dev/zero would convert to an empty disk).
let dir: TmpDir;
let src: string;
let srcHash: string;

beforeAll(async () => {
  dir = await tmpDir();
  src = dir.file('src.raw');
  await writeSparseImage(src, 4 * 1024 * 1024, 22);
  srcHash = await sha256File(src);
});
afterAll(async () => {
  await dir.remove();
});

/** Exit 1, a one-line message naming `file` and saying `words`, no stack trace. */
function expectRefused(r: { code: number | null; stderr: string }, file: string, words: RegExp): void {
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(file);
  expect(r.stderr).toMatch(words);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('an output that is an input is refused and the input is unchanged', () => {
  it('the same path, for every output format', async () => {
    for (const fmt of ['qcow2', 'raw', 'vhd', 'vmdk', 'vdi']) {
      const r = await cli('convert', src, src, '-O', fmt);
      expectRefused(r, src, /the output is the input/);
      expect(await sha256File(src)).toBe(srcHash);
    }
  });

  it('through a hard link and a symlink (and a relative name)', async () => {
    const hard = dir.file('hard.raw');
    const soft = dir.file('soft.raw');
    await link(src, hard);
    await symlink(src, soft);
    for (const out of [hard, soft]) {
      expectRefused(await cli('convert', src, out, '-O', 'qcow2'), out, new RegExp(`the output is the input \\(${src}\\)`));
    }
    expectRefused(await runBin(['convert', src, `${dir.path}/./src.raw`, '-O', 'qcow2']), 'src.raw', /the output is the input/);
    expect(await sha256File(src)).toBe(srcHash);
    expect((await lstat(soft)).isSymbolicLink()).toBe(true);
  });

  it('a VMDK extent of the input, found once the descriptor is read', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    const desc = dir.file('flat.vmdk');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', src, desc]);
    const extent = dir.file('flat-flat.vmdk');
    const before = await sha256File(extent);
    expectRefused(await cli('convert', desc, extent, '-O', 'raw'), extent, /the output is the input/);
    expect(await sha256File(extent)).toBe(before);
  });

  it('translate with the AMI as its own output, for kvm and eucalyptus', async (ctx) => {
    requireTools(ctx, 'mkfs.ext3');
    const g = centos5Guest();
    const ami = dir.file('ami.img');
    await buildGuestImage(g.spec, ami, g.image);
    const hash = await sha256File(ami);
    for (const target of ['kvm', 'eucalyptus']) {
      expectRefused(await cli('translate', ami, ami, '-t', target), ami, /the output is the input/);
      expect(await sha256File(ami)).toBe(hash);
    }
  });
});

describe('outputs that are not regular files', () => {
  it('a mknod copy of /dev/null stays a device and nothing is written', async (ctx) => {
    if (process.getuid?.() !== 0) {
      if (process.env.CI) throw new Error('CI runs as root: mknod must work');
      ctx.skip('mknod needs root');
    }
    const devnull = dir.file('null');
    execFileSync('mknod', [devnull, 'c', '1', '3']);
    for (const args of [['convert', src, devnull, '-O', 'raw'], ['convert', src, devnull, '-O', 'qcow2']]) {
      expectRefused(await cli(...args), devnull, /is a character device; an output must be a new or regular file/);
    }
    const st = await stat(devnull);
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe((await stat('/dev/null')).rdev);
  });

  it('a directory as output', async () => {
    const d = dir.file('outdir');
    await mkdir(d);
    expectRefused(await cli('convert', src, d), d, /is a directory/);
  });
});

describe('inputs that are not regular files or block devices', () => {
  it('a FIFO is refused at once, not waited on', async () => {
    const fifo = dir.file('fifo');
    execFileSync('mkfifo', [fifo]);
    for (const cmd of ['info', 'inspect']) {
      // runBin: a hang would time the test out instead of passing.
      expectRefused(await runBin([cmd, fifo]), fifo, /is a FIFO; an image must be a regular file or a block device/);
    }
    expectRefused(await runBin(['convert', fifo, dir.file('from-fifo.qcow2')]), fifo, /is a FIFO/);
  }, 10_000);

  it('a VMDK descriptor whose extent is a FIFO', async () => {
    const fifo = dir.file('extent-fifo');
    execFileSync('mkfifo', [fifo]);
    const desc = dir.file('fifo.vmdk');
    await writeFile(desc, [
      '# Disk DescriptorFile', 'version=1', 'CID=fffffffe', 'parentCID=ffffffff', 'createType="monolithicFlat"', '',
      'RW 2048 FLAT "extent-fifo" 0', '', 'ddb.virtualHWVersion = "4"', '',
    ].join('\n'));
    expectRefused(await runBin(['convert', desc, dir.file('from-fifo-extent.raw')]), fifo, /is a FIFO/);
  }, 10_000);

  it('/dev/zero and a directory', async () => {
    expectRefused(await runBin(['convert', '/dev/zero', dir.file('zero.raw')]), '/dev/zero', /is a character device/);
    expectRefused(await cli('info', dir.path), dir.path, /is a directory/);
  });

  it('leaves nothing behind', async () => {
    const left = (await readdir(dir.path)).filter((n) => n.includes('partial') || n.startsWith('from-') || n.startsWith('zero'));
    expect(left).toEqual([]);
  });
});
