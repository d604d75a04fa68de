import { copyFile, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildDebianAmi,
  qemuBoot,
  grubShell,
  requireTools,
  run,
  sha256File,
  tmpDir,
  type TmpDir,
} from '@amitrans/testkit';
import type { TranslateResult } from '@amitrans/diskimg';
import { cli, expectDryRunEqualsRun } from './helpers.js';

// One PV AMI from Debian packages (ext3 -I 128, stage files in /boot/grub, pv-grub menu.lst,
// /dev/xvda1 fstab, hvc0 getty, xenblk/xennet aliases), translated many ways.
let dir: TmpDir;
let ami = '';
let amiHash = '';
let building: Promise<void> | undefined;
const UUID = '3d1e5c2a-7b4f-4a8e-9c6d-5f0e1a2b3c4d';
const PART_OFFSET = 2048 * 512;

type Ctx = { skip: (note?: string) => void };

/** The fixture, built on first use (a test context is needed to skip when tools are missing). */
async function fixture(ctx: Ctx): Promise<string> {
  requireTools(ctx, 'mkfs.ext3', 'depmod', 'cpio');
  building ??= (async () => {
    const path = dir.file('debian-ami.img');
    await buildDebianAmi(ctx, path);
    amiHash = await sha256File(path);
    ami = path;
  })();
  await building;
  return ami;
}

beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(async () => {
  // The input is never written.
  if (ami && existsSync(ami)) expect(await sha256File(ami)).toBe(amiHash);
  await dir?.remove();
});

async function translateJson(ctx: Ctx, ...args: string[]): Promise<TranslateResult> {
  const r = await cli('translate', await fixture(ctx), ...args, '--json');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as TranslateResult;
}

function expectBooted(output: string): void {
  expect(output).toContain('GNU GRUB  version 0.97');
  expect(output).toMatch(/AMITRANS-BOOT-OK kernel=6\.1\.\d+-\d+-cloud-amd64/);
  const fstab = /--- \/etc\/fstab ---\r?\n([\s\S]*?)--- end ---/.exec(output)?.[1] ?? '';
  expect(fstab).toMatch(new RegExp(`^UUID=${UUID}\\s+/\\s+ext3`, 'm'));
  expect(fstab).toMatch(/nofail/);
  expect(fstab).not.toMatch(/xvda/);
}

describe('translate for kvm boots in QEMU (TCG, serial console) in every container', () => {
  const cases: [string, string][] = [['qcow2', 'qcow2'], ['raw', 'raw'], ['vmdk', 'vmdk'], ['vhd', 'vpc'], ['vdi', 'vdi']];
  for (const [fmt, qfmt] of cases) {
    it(`-O ${fmt}`, async (ctx) => {
      requireTools(ctx, 'qemu-system-x86_64');
      const out = dir.file(`kvm.${fmt}`);
      const r = await translateJson(ctx, out, '-t', 'kvm', '-O', fmt);
      expect(r.layout).toBe('disk');
      expect(r.verdict).toMatchObject({ status: 'boots-after-translation', bus: 'virtio' });
      expect(r.stages.slice(-2).map((x) => x.name)).toEqual(['layout', 'write']);
      const boot = await qemuBoot(out, { format: qfmt, iface: 'virtio' });
      expect(boot.timedOut, boot.output.slice(-2000)).toBe(false);
      expectBooted(boot.output);
      expect(boot.seconds).toBeLessThan(120);
    }, 180_000);
  }
});

describe('translate for virtualbox', () => {
  it('boots from an IDE disk (the cloud kernel has ata_piix, no ahci)', async (ctx) => {
    requireTools(ctx, 'qemu-system-x86_64');
    const out = dir.file('vbox.vdi');
    const r = await translateJson(ctx, out, '-t', 'virtualbox');
    expect(r.verdict).toMatchObject({ bus: 'ide', status: 'boots-after-translation' });
    const boot = await qemuBoot(out, { format: 'vdi', iface: 'ide' });
    expect(boot.timedOut, boot.output.slice(-2000)).toBe(false);
    expectBooted(boot.output);
  }, 180_000);
});

describe('the bootable disk', () => {
  let made: Promise<string> | undefined;
  async function raw(ctx: Ctx): Promise<string> {
    const src = await fixture(ctx);
    made ??= (async () => {
      const out = dir.file('kvm-oracle.raw');
      const r = await cli('translate', src, out, '-t', 'kvm', '-O', 'raw');
      expect(r.code).toBe(0);
      return out;
    })();
    return made;
  }

  it('the first 20 sectors and /boot/grub/stage2 equal what `grub --batch` setup writes on the same disk', async (ctx) => {
    requireTools(ctx, 'debugfs');
    const ours = await raw(ctx);
    const theirs = dir.file('kvm-oracle.grub.raw');
    await copyFile(ours, theirs);
    // Let the real grub shell install over our disk, then compare.
    const fh = await import('node:fs/promises').then((m) => m.open(theirs, 'r+'));
    await fh.write(Buffer.alloc(512 * 19), 0, 512 * 19, 512); // wipe the embedded stage 1.5 first
    await fh.close();
    const shell = grubShell(ctx);
      const out = await run(shell.cmd, [...shell.args, '--batch', '--device-map=/dev/null', '--no-floppy'], {
      input: `device (hd0) ${theirs}\nroot (hd0,0)\nsetup (hd0)\nquit\n`,
    });
    expect(out.stdout).toMatch(/19 sectors are embedded/);
    const a = (await readFile(ours)).subarray(0, 20 * 512);
    const b = (await readFile(theirs)).subarray(0, 20 * 512);
    expect(Buffer.compare(a, b)).toBe(0);
    const s1 = dir.file('stage2.ours');
    const s2 = dir.file('stage2.grub');
    await run('debugfs', ['-R', `dump /boot/grub/stage2 ${s1}`, `${ours}?offset=${PART_OFFSET}`]);
    await run('debugfs', ['-R', `dump /boot/grub/stage2 ${s2}`, `${theirs}?offset=${PART_OFFSET}`]);
    expect(Buffer.compare(await readFile(s1), await readFile(s2))).toBe(0);
  });

  it('e2fsck -fn is clean on the output filesystem; the partition table is what sfdisk reads', async (ctx) => {
    requireTools(ctx, 'e2fsck', 'sfdisk');
    const ours = await raw(ctx);
    await run('e2fsck', ['-fn', `${ours}?offset=${PART_OFFSET}`]);
    const t = JSON.parse((await run('sfdisk', ['--json', ours])).stdout) as { partitiontable: { partitions: { start: number; type: string; bootable?: boolean }[] } };
    expect(t.partitiontable.partitions).toEqual([expect.objectContaining({ start: 2048, type: '83', bootable: true })]);
  });

  it('free blocks are holes: stale data in deleted files never reaches the output', async (ctx) => {
    requireTools(ctx, 'debugfs');
    // Write a recognisable file into a copy of the AMI, delete it (its blocks keep the bytes), translate.
    const dirty = dir.file('dirty-ami.img');
    await copyFile(await fixture(ctx), dirty);
    const secret = dir.file('secret.txt');
    await import('node:fs/promises').then((m) => m.writeFile(secret, 'AMITRANS-STALE-SECRET\n'.repeat(4096)));
    await run('debugfs', ['-w', '-R', `write ${secret} /secret.txt`, dirty]);
    await run('debugfs', ['-w', '-R', 'rm /secret.txt', dirty]);
    expect((await readFile(dirty)).includes('AMITRANS-STALE-SECRET')).toBe(true);
    const out = dir.file('clean.raw');
    expect((await cli('translate', dirty, out, '-t', 'kvm', '-O', 'raw')).code).toBe(0);
    expect((await readFile(out)).includes('AMITRANS-STALE-SECRET')).toBe(false);
  });

  it('blocks the edits free (history deleted, logs emptied) are copied early, then zeroed: their bytes never reach raw or qcow2', async (ctx) => {
    requireTools(ctx, 'debugfs', 'qemu-img', 'e2fsck');
    const dirty = dir.file('history-ami.img');
    await copyFile(await fixture(ctx), dirty);
    const secret = dir.file('history.txt');
    await import('node:fs/promises').then((m) => m.writeFile(secret, 'AMITRANS-EDIT-FREED\n'.repeat(8192)));
    await run('debugfs', ['-w', '-R', 'mkdir /root', dirty]).catch(() => undefined);
    await run('debugfs', ['-w', '-R', 'mkdir /var/log', dirty]).catch(() => undefined);
    await run('debugfs', ['-w', '-R', `write ${secret} /root/.bash_history`, dirty]);
    await run('debugfs', ['-w', '-R', `write ${secret} /var/log/amitrans.log`, dirty]);
    expect((await readFile(dirty)).includes('AMITRANS-EDIT-FREED')).toBe(true);
    for (const fmt of ['qcow2', 'raw']) {
      const out = dir.file(`history.${fmt}`);
      const r = await cli('translate', dirty, out, '-t', 'kvm', '-O', fmt, '--json');
      expect(r.code).toBe(0);
      const changes = (JSON.parse(r.stdout) as TranslateResult).changes;
      expect(changes).toContainEqual(expect.objectContaining({ file: '/root/.bash_history', action: 'delete' }));
      expect(changes).toContainEqual(expect.objectContaining({ file: '/var/log/amitrans.log', action: 'truncate' }));
      const plain = dir.file(`history-${fmt}.raw`);
      await run('qemu-img', ['convert', '-f', fmt, '-O', 'raw', out, plain]);
      expect((await readFile(plain)).includes('AMITRANS-EDIT-FREED')).toBe(false);
      expect((await readFile(out)).includes('AMITRANS-EDIT-FREED')).toBe(false);
      await run('e2fsck', ['-fn', `${plain}?offset=${PART_OFFSET}`]);
      expect((await run('debugfs', ['-R', 'stat /var/log/amitrans.log', `${plain}?offset=${PART_OFFSET}`])).stdout).toMatch(/Size: 0\b/);
    }
  }, 180_000);
});

async function debugfsCat(image: string, path: string): Promise<string> {
  return (await run('debugfs', ['-R', `cat ${path}`, image])).stdout;
}

describe('translate for xenserver and eucalyptus keeps the partition-less filesystem', () => {
  it('xenserver: hvc0, xvd names, root password and ssh password login', async (ctx) => {
    requireTools(ctx, 'debugfs', 'e2fsck', 'openssl');
    const out = dir.file('xen.raw');
    const r = await translateJson(ctx, out, '-t', 'xenserver', '-O', 'raw', '--root-password', 'password:s3cret', '--ssh-password-auth', 'yes');
    expect(r.layout).toBe('filesystem');
    await run('e2fsck', ['-fn', out]);
    const menu = await debugfsCat(out, '/boot/grub/menu.lst');
    expect(menu).toMatch(/^kernel \/boot\/vmlinuz-\S+ ro root=UUID=\S+ console=hvc0$/m);
    expect(menu).not.toMatch(/serial/);
    expect(await debugfsCat(out, '/etc/fstab')).toMatch(/^\/dev\/xvdb\s+\/mnt\s+auto\s+defaults,nofail/m);
    expect(await debugfsCat(out, '/etc/modprobe.conf')).toBe('alias scsi_hostadapter xen-blkfront\nalias eth0 xen-netfront\n');
  });

  it('eucalyptus: image-id, euca-udev, sda names, metadata rc.local', async (ctx) => {
    requireTools(ctx, 'debugfs', 'e2fsck');
    const out = dir.file('euca.raw');
    await translateJson(ctx, out, '-t', 'eucalyptus', '-O', 'raw', '--image-id', 'timestamp=2026-01-02T03:04:05Z,image_name=euca-debian-emi');
    await run('e2fsck', ['-fn', out]);
    const id = (await debugfsCat(out, '/etc/image-id')).split('\n');
    expect(id.slice(0, 4)).toEqual(['image_name=euca-debian-emi', 'image_version=2026.01.02', 'image_arch=x86_64', 'image_file=euca-debian-2026.01.02-x86_64.img']);
    expect(id[4]).toMatch(/^image_stamp=[0-9a-f]{4}-[0-9a-f]{4}$/);
    expect(id.slice(5)).toEqual(['image_date=20260102030405', 'recipe_name=debian-based', '']);
    const stat = (await run('debugfs', ['-R', 'stat /sbin/euca-udev', out])).stdout;
    expect(stat).toMatch(/Mode:\s+0755/);
    expect(await debugfsCat(out, '/etc/fstab')).toMatch(/^\/dev\/sda2\s+\/mnt/m);
    expect(await debugfsCat(out, '/etc/rc.local')).toMatch(/169\.254\.169\.254/);
    expect(await debugfsCat(out, '/etc/modprobe.conf')).toBe('alias scsi_hostadapter virtio_blk\nalias eth0 virtio_net\n');
  });
});

describe('a partitioned input gets only the guest edits', () => {
  it('the partition table and other partitions stay; the root partition is edited; e2fsck clean', async (ctx) => {
    requireTools(ctx, 'sfdisk', 'debugfs', 'e2fsck', 'dd');
    const src = await fixture(ctx);
    const { size } = await import('node:fs/promises').then((m) => m.stat(src));
    const disk = dir.file('partitioned.img');
    const start = 4096;
    const sectors = size / 512;
    const { sfdiskImage } = await import('@amitrans/testkit');
    await sfdiskImage(disk, (start + sectors + 8192) * 512, `label: dos\nlabel-id: 0x0badcafe\nstart=2048, size=2048, type=82\nstart=${start}, size=${sectors}, type=83, bootable\n`);
    await run('dd', [`if=${src}`, `of=${disk}`, 'bs=1M', `seek=${start * 512}`, 'oflag=seek_bytes', 'conv=notrunc,sparse', 'status=none']);
    // Mark the swap partition's first bytes so we can see it is copied through.
    const fh = await import('node:fs/promises').then((m) => m.open(disk, 'r+'));
    await fh.write(Buffer.from('SWAP-PARTITION-CONTENT'), 0, 22, 2048 * 512);
    await fh.close();
    const out = dir.file('partitioned-out.raw');
    const r = await cli('translate', disk, out, '-t', 'kvm', '-O', 'raw', '--json');
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as TranslateResult;
    expect(res.layout).toBe('partitioned');
    expect((await run('sfdisk', ['--json', out])).stdout.replaceAll(out, 'X')).toBe((await run('sfdisk', ['--json', disk])).stdout.replaceAll(disk, 'X'));
    expect((await readFile(out)).subarray(2048 * 512, 2048 * 512 + 22).toString()).toBe('SWAP-PARTITION-CONTENT');
    const at = `${out}?offset=${start * 512}`;
    await run('e2fsck', ['-fn', at]);
    expect((await run('debugfs', ['-R', 'cat /etc/fstab', at])).stdout).toMatch(new RegExp(`^UUID=${UUID}\\s+/\\s`, 'm'));
    expect((await run('debugfs', ['-R', 'cat /boot/grub/menu.lst', at])).stdout).toMatch(/^root \(hd0,1\)$/m);
    // Its MBR had no boot code (as pv-grub's hd00 AMIs): GRUB legacy goes in, for partition 2;
    // the partition table and disk signature stay.
    expect(Buffer.compare((await readFile(out)).subarray(440, 512), (await readFile(disk)).subarray(440, 512))).toBe(0);
    expect((await readFile(out)).subarray(0, 440).some((b) => b !== 0)).toBe(true);
    expect(res.changes).toEqual(expect.arrayContaining([expect.objectContaining({ file: '(MBR)', why: expect.stringMatching(/for partition 2: sector 0 had no boot code/) })]));
  }, 120_000);

  it('an hd00 AMI (filesystem in partition 1, no boot code) boots on kvm; for eucalyptus it becomes a bare filesystem', async (ctx) => {
    requireTools(ctx, 'sfdisk', 'dd', 'qemu-system-x86_64', 'e2fsck');
    const src = await fixture(ctx);
    const { size } = await import('node:fs/promises').then((m) => m.stat(src));
    const disk = dir.file('hd00.img');
    const { sfdiskImage } = await import('@amitrans/testkit');
    await sfdiskImage(disk, (2048 + size / 512) * 512, `label: dos\nstart=2048, size=${size / 512}, type=83\n`);
    await run('dd', [`if=${src}`, `of=${disk}`, 'bs=1M', `seek=${2048 * 512}`, 'oflag=seek_bytes', 'conv=notrunc,sparse', 'status=none']);
    const inspect = JSON.parse((await cli('inspect', disk, '--json')).stdout) as { report: { verdicts: { target: string; status: string; changes: string[] }[] } };
    expect(inspect.report.verdicts.find((v) => v.target === 'kvm')).toMatchObject({ status: 'boots-after-translation', changes: expect.arrayContaining([expect.stringMatching(/GRUB legacy into the MBR for partition 1/)]) });
    const out = dir.file('hd00-kvm.raw');
    const r = await cli('translate', disk, out, '-t', 'kvm', '-O', 'raw');
    expect(r.code, r.stderr).toBe(0);
    const boot = await qemuBoot(out, { format: 'raw', iface: 'virtio' });
    expect(boot.timedOut, boot.output.slice(-2000)).toBe(false);
    expectBooted(boot.output);
    const emi = dir.file('hd00-emi.img');
    const e = await cli('translate', disk, emi, '-t', 'eucalyptus', '--json');
    expect(e.code, e.stderr).toBe(0);
    expect((JSON.parse(e.stdout) as TranslateResult).layout).toBe('filesystem');
    await run('e2fsck', ['-fn', emi]);
    expect((await run('debugfs', ['-R', 'cat /boot/grub/menu.lst', emi])).stdout).toMatch(/^root \(hd0\)$/m);
    await expectDryRunEqualsRun(disk, (kind, target) => dir.file(`hd00-${kind}-${target}.img`));
  }, 300_000);
});

describe('translate refuses and reports', () => {
  it('--dry-run reports the changes and writes nothing', async (ctx) => {
    const out = dir.file('dry.qcow2');
    const r = await translateJson(ctx, out, '-t', 'kvm', '--dry-run');
    expect(r.changes.map((c) => c.step)).toEqual(expect.arrayContaining(['fstab', 'bootloader', 'consoles', 'modules', 'network', 'clean']));
    // The guest's own stage files read its ext3: GRUB legacy, as the distribution used.
    expect(r.bootloader).toEqual({ kind: 'grub-legacy', from: '/boot/grub', source: 'guest', why: 'the guest\'s own GRUB legacy stage files' });
    expect(r.changes.find((c) => c.file.startsWith('(disk'))?.why).toBe('GRUB legacy from /boot/grub: the guest\'s own GRUB legacy stage files');
    // The stages that ran, in order: a dry run stops before laying out and writing the disk.
    expect(r.stages.map((x) => x.name)).toEqual(['open', 'open-guest', 'inspect', 'plan', 'step:fstab', 'step:bootloader', 'step:consoles', 'step:modules', 'step:initrd',
      'step:network', 'step:selinux', 'step:clean', 'bootloader']);
    expect(r.stages.every((x) => x.seconds >= 0)).toBe(true);
    expect(existsSync(out)).toBe(false);
  });
  it('an unknown output option is refused before any work, as convert refuses it', async (ctx) => {
    const out = dir.file('opt.qcow2');
    const r = await cli('translate', await fixture(ctx), out, '-t', 'kvm', '-o', 'colour=blue');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/qcow2 output has no option 'colour'/);
    expect(existsSync(out)).toBe(false);
  });
  it('an image with no kernel (it used an external AKI): exit 1, says why, writes nothing', async (ctx) => {
    requireTools(ctx, 'mkfs.ext3');
    const sample = dir.file('aki.img');
    await run('bash', [new URL('../../../scripts/make-sample.sh', import.meta.url).pathname, sample]);
    const out = dir.file('aki.qcow2');
    const r = await cli('translate', sample, out, '-t', 'kvm');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/will not boot on kvm: no kernel in \/boot: the image relied on an external kernel/);
    expect(existsSync(out)).toBe(false);
  });
});
