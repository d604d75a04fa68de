import { readdir, rm, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { translate } from '@amitrans/diskimg';
import { buildGuestImage, centos5Guest, run, sha256File, tmpDir, writeSparseImage, type TmpDir } from '@amitrans/testkit';
import { cli } from './helpers.js';

// Every mistake a user can make on the command line ends the same way: exit 2 (a usage
// error, as for any Unix tool), one line on stderr that says what was wrong, no stack
// trace, nothing written and the input unchanged. Mistakes about the image are exit 1.
let dir: TmpDir;
let src: string;
let ami: string;
let amiHash: string;

beforeAll(async () => {
  dir = await tmpDir();
  src = dir.file('src.raw');
  await writeSparseImage(src, 4 * 1024 * 1024, 7);
  const g = centos5Guest({ plainKernel: true });
  ami = dir.file('ami.img');
  await buildGuestImage(g.spec, ami, { ...g.image, label: '' });
  amiHash = await sha256File(ami);
});
afterAll(async () => {
  await dir.remove();
});

function expectOneLine(r: { code: number | null; stderr: string }, code: number, words: RegExp): void {
  expect(r.stderr).toMatch(words);
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at |Error:/);
}

async function expectNothingWritten(): Promise<void> {
  const left = (await readdir(dir.path)).filter((n) => !['src.raw', 'ami.img'].includes(n) && !n.endsWith('.work'));
  expect(left).toEqual([]);
  expect(await sha256File(ami)).toBe(amiHash);
}

describe('command-line mistakes exit 2 with one line', () => {
  const cases: [string, string[], RegExp][] = [
    ['an unknown output format', ['convert', 'SRC', 'OUT', '-O', 'nosuch'], /unknown output format 'nosuch'.*qcow2/],
    ['an option that is not key=value', ['convert', 'SRC', 'OUT.vmdk', '-o', 'compat6'], /option 'compat6' is not key=value/],
    ['--size abc', ['translate', 'AMI', 'OUT.raw', '-t', 'kvm', '--size', 'abc'], /--size "abc": expected a size/],
    ['--size -5', ['translate', 'AMI', 'OUT.raw', '-t', 'kvm', '--size=-5'], /--size "-5": expected a size/],
    ['--size 3X', ['translate', 'AMI', 'OUT.raw', '-t', 'kvm', '--size', '3X'], /--size "3X"/],
    ['--partition 0', ['inspect', 'AMI', '--partition', '0'], /--partition "0": expected a whole number from 1/],
    ['--partition 1.5', ['translate', 'AMI', 'OUT.raw', '-t', 'kvm', '--partition', '1.5'], /--partition "1.5"/],
    ['--cpus abc', ['convert', 'SRC', 'OUT.ova', '--cpus', 'abc'], /--cpus "abc"/],
    ['--timeout 0', ['verify', 'AMI', '--timeout', '0'], /--timeout "0": expected a number of seconds above 0/],
    ['--timeout 1m', ['verify', 'AMI', '--timeout', '1m'], /--timeout "1m": expected a number of seconds/],
    ['an unknown step for --only', ['translate', 'AMI', 'OUT.raw', '-t', 'kvm', '--only', 'nosuch'], /only.*"nosuch".*fstab/],
    ['an unknown step for --skip', ['translate', 'AMI', 'OUT.raw', '-t', 'kvm', '--skip', 'fstab', 'grub'], /grub/],
    ['an unknown clean operation', ['translate', 'AMI', 'OUT.raw', '-t', 'kvm', '--clean', 'history'], /clean.*"history".*bash-history/],
    ['an unknown target', ['translate', 'AMI', 'OUT.raw', '-t', 'openstack'], /target.*"openstack"/],
    ['a missing output', ['convert', 'SRC'], /Not enough non-option arguments/],
    ['--root-by label on a filesystem without a label', ['translate', 'AMI', 'OUT.qcow2', '-t', 'kvm', '--root-by', 'label'], /--root-by label: the root filesystem has no label/],
  ];
  for (const [name, args, words] of cases) {
    it(name, async () => {
      const argv = args.map((a) => a.replace(/^SRC$/, src).replace(/^AMI$/, ami).replace(/^OUT/, dir.file('out')));
      expectOneLine(await cli(...argv), 2, words);
      await expectNothingWritten();
    });
  }

  // Each writer's own option table: an unknown key and a bad value, refused before reading.
  const writers: [string, string, string][] = [
    ['raw', 'colour=blue', 'compress=zip'],
    ['qcow2', 'colour=blue', 'cluster_size=1000'],
    ['vmdk', 'colour=blue', 'subformat=twoGbMaxExtentSparse'],
    ['vdi', 'colour=blue', 'subformat=split'],
    ['vhd', 'colour=blue', 'subformat=differencing'],
    ['ova', 'colour=blue', 'nic=rtl8139'],
  ];
  for (const [format, unknown, badValue] of writers) {
    it(`-O ${format}: an unknown -o key and a bad -o value`, async () => {
      for (const o of [unknown, badValue]) {
        const r = await cli('convert', src, dir.file(`out.${format}`), '-O', format, '-o', o);
        expectOneLine(r, 2, new RegExp(o.split('=')[0]!));
      }
      const t = await cli('translate', ami, dir.file(`out.${format}`), '-t', 'kvm', '-O', format, '-o', unknown);
      expectOneLine(t, 2, /colour/);
      await expectNothingWritten();
    });
  }
});

describe('mistakes about the image exit 1 with one line', () => {
  it('a disk without a filesystem, for each command that needs one', async () => {
    for (const args of [['inspect', src], ['translate', src, dir.file('out.qcow2'), '-t', 'kvm']]) {
      expectOneLine(await cli(...args), 1, new RegExp(src));
    }
    await expectNothingWritten();
  });
});

describe('the library refuses the same requests with E_USAGE', () => {
  it('unknown steps, clean operations, sizes and partitions', async () => {
    const out = dir.file('lib.qcow2');
    const bad = [{ only: ['nosuch'] }, { skip: ['grub'] }, { clean: ['history'] }, { size: Number.NaN }, { size: 1.5 }, { partition: 0 }];
    for (const extra of bad) {
      await expect(translate(ami, out, { target: 'kvm', ...(extra as object) })).rejects.toMatchObject({ code: 'E_USAGE' });
    }
    await expect(translate(ami, out, { target: 'kvm', format: 'nosuch' })).rejects.toMatchObject({ code: 'E_USAGE' });
    await expectNothingWritten();
  });
});

describe('mistakes about what the guest or the file holds exit 1 with one line', () => {
  it('--root-password on a guest whose /etc/shadow has no root line', async () => {
    const g = centos5Guest({ plainKernel: true });
    const noRoot = dir.file('noroot.img');
    const files = { ...g.spec.files, '/etc/shadow': 'daemon:*:15000:0:99999:7:::\n' };
    await buildGuestImage({ ...g.spec, files }, noRoot, g.image);
    const r = await cli('translate', noRoot, dir.file('out.raw'), '-t', 'xenserver', '--root-password', 'password:secret');
    expectOneLine(r, 1, /\/etc\/shadow has no root entry/);
    expect(r.stderr).not.toMatch(/secret/);
    await rm(noRoot);
    await expectNothingWritten();
  });

  it('a file that is not an image: a plain tar, a truncated qcow2 header', async () => {
    const tar = dir.file('plain.tar');
    await run('tar', ['-cf', tar, '-C', dir.path, 'src.raw']);
    const qcow2 = dir.file('short.qcow2');
    // A qcow2 v3 header whose L1 table lies beyond the end of the file.
    const header = Buffer.alloc(512);
    header.writeUInt32BE(0x514649fb, 0);
    header.writeUInt32BE(3, 4);
    header.writeUInt32BE(16, 20);
    header.writeBigUInt64BE(1n << 30n, 24);
    header.writeUInt32BE(16, 36);
    header.writeBigUInt64BE(0x30000n, 40);
    header.writeBigUInt64BE(0x10000n, 48);
    header.writeUInt32BE(1, 56);
    header.writeUInt32BE(4, 96);
    header.writeUInt32BE(104, 100);
    await writeFile(qcow2, header);
    for (const file of [tar, qcow2]) {
      for (const args of [['info', file], ['convert', file, dir.file('out.raw')], ['inspect', file], ['translate', file, dir.file('out.qcow2'), '-t', 'kvm']]) {
        expectOneLine(await cli(...args), 1, new RegExp(basename(file)));
      }
      await rm(file);
    }
    await expectNothingWritten();
  });
});
