/**
 * PV to HVM for AWS (#21): `translate -t ec2-hvm` and `verify -t ec2-hvm`. The oracles:
 * sfdisk (the MBR), e2fsck and debugfs (the filesystem), qemu-img (the containers), and a
 * QEMU boot from an emulated NVMe controller, as Nitro attaches EBS. Two boots in all: the
 * realistic Debian AMI to its login prompt, and the generic-kernel AMI whose initrd lacked nvme.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TranslateResult, VerifyResult } from '@amitrans/diskimg';
import {
  amazonLinuxGuest, buildGuestImage, centos5Guest, CENTOS5, genericKernelAmi, realDebianAmi, requireTools, run, startS3, tmpDir,
  type GuestFixture, type S3Server, type TmpDir,
} from '@amitrans/testkit';
import { cli, inputGuard } from './helpers.js';

type Ctx = { skip: (note?: string) => void };
const PART = 2048 * 512;
const REAL_UUID = '5b7c3f0e-2d4a-4c1b-8e9f-6a0b1c2d3e4f';
const GENERIC_UUID = '3d1e5c2a-7b4f-4a8e-9c6d-5f0e1a2b3c4d';

let dir: TmpDir;
const guard = inputGuard();
beforeAll(async () => {
  dir = await tmpDir('amitrans-ec2hvm-');
});
afterAll(async () => {
  // The input is never written.
  await guard.expectUnchanged();
  await dir?.remove();
});

const remember = guard.remember;

async function translateJson(...args: string[]): Promise<TranslateResult> {
  const r = await cli('translate', ...args, '--json');
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as TranslateResult;
}

/** A file of the filesystem in partition 1 of a raw disk (debugfs). */
async function guestFile(image: string, path: string): Promise<string> {
  return (await run('debugfs', ['-R', `cat ${path}`, `${image}?offset=${PART}`])).stdout;
}

/** The oracles' view of a translated raw disk: one bootable Linux partition at 2048, a clean filesystem. */
async function checkDisk(raw: string): Promise<void> {
  const table = JSON.parse((await run('sfdisk', ['--json', raw])).stdout) as { partitiontable: { label: string; partitions: { start: number; type: string; bootable?: boolean }[] } };
  expect(table.partitiontable.label).toBe('dos');
  expect(table.partitiontable.partitions).toMatchObject([{ start: 2048, type: '83', bootable: true }]);
  const part = dir.file(`${raw.split('/').pop()}.p1`);
  await run('dd', [`if=${raw}`, `of=${part}`, 'bs=1M', `skip=${PART}`, 'iflag=skip_bytes', 'conv=sparse', 'status=none']);
  await run('e2fsck', ['-fn', part]);
}

let real: Promise<string> | undefined;
function realAmi(ctx: Ctx): Promise<string> {
  requireTools(ctx, 'qemu-system-x86_64', 'qemu-img', 'debugfs', 'e2fsck', 'sfdisk');
  real ??= realDebianAmi(ctx).then(remember);
  return real;
}

describe('the realistic Debian AMI (cloud kernel: nvme built in, ena a module)', () => {
  let raw: Promise<{ path: string; result: TranslateResult }> | undefined;
  function translated(ctx: Ctx): Promise<{ path: string; result: TranslateResult }> {
    raw ??= (async () => {
      const input = await realAmi(ctx);
      const path = dir.file('real-hvm.raw');
      return { path, result: await translateJson(input, path, '-t', 'ec2-hvm') };
    })();
    return raw;
  }

  it('inspect: ec2-hvm runs on Nitro and Xen HVM, after the changes AWS\'s pre-check asks for', async (ctx) => {
    const input = await realAmi(ctx);
    const r = await cli('inspect', input, '--json');
    expect(r.code, r.stderr).toBe(0);
    const v = (JSON.parse(r.stdout) as { report: { verdicts: { target: string; status: string; platforms?: string[]; bus?: string; changes: string[]; reasons: string[] }[] } }).report.verdicts.find((x) => x.target === 'ec2-hvm')!;
    expect(v).toMatchObject({ status: 'boots-after-translation', platforms: ['Nitro', 'Xen HVM'], bus: 'nvme', reasons: [] });
    expect(v.changes).toEqual(expect.arrayContaining([
      expect.stringMatching(/^fstab: root \/dev\/xvda1 is a device name: NVMe device names are not stable/),
      'bootloader config: console=ttyS0',
      'bootloader config: nvme_core.io_timeout=4294967295',
      'consoles: hvc0 -> ttyS0',
    ]));
    const human = await cli('inspect', input);
    expect(human.stdout).toMatch(/ec2-hvm: +boots after translation \(kernel 6\.1\.\S+, nvme disk\): runs on Nitro, Xen HVM/);
  }, 600_000);

  it('translate -t ec2-hvm: MBR disk with p1 at 2048, e2fsck clean, root by UUID, ttyS0, the io_timeout, no hvc0 getty; the AWS commands name the output', async (ctx) => {
    const { path, result } = await translated(ctx);
    expect(result).toMatchObject({ target: 'ec2-hvm', format: 'raw', layout: 'disk', verdict: { bus: 'nvme', platforms: ['Nitro', 'Xen HVM'] } });
    await checkDisk(path);
    const fstab = await guestFile(path, '/etc/fstab');
    expect(fstab).toMatch(new RegExp(`^UUID=${REAL_UUID}\\s+/\\s`, 'm'));
    expect(fstab).not.toMatch(/^\/dev\/xvda1/m);
    const menu = await guestFile(path, '/boot/grub/menu.lst');
    const kernel = menu.split('\n').find((l) => /^\s*kernel /.test(l))!;
    expect(kernel).toContain(`root=UUID=${REAL_UUID}`);
    expect(kernel).toMatch(/console=tty0 console=ttyS0,115200n8/);
    expect(kernel).toContain('nvme_core.io_timeout=4294967295');
    expect(kernel).not.toMatch(/hvc0|xvc0/);
    const wants = (await run('debugfs', ['-R', 'ls -l /etc/systemd/system/getty.target.wants', `${path}?offset=${PART}`])).stdout;
    expect(wants).toContain('serial-getty@ttyS0.service');
    expect(wants).not.toMatch(/hvc0|xvc0/);
    // The commands to run next, in the JSON too: the real output file, the guest's architecture.
    expect(result.commands).toEqual([
      `aws s3 cp ${path} s3://YOUR-BUCKET/real-hvm.raw`,
      "aws ec2 import-snapshot --description 'amitrans ami-hvm' --disk-container 'Format=RAW,UserBucket={S3Bucket=YOUR-BUCKET,S3Key=real-hvm.raw}'",
      expect.stringMatching(/^aws ec2 describe-import-snapshot-tasks /),
      "aws ec2 register-image --name ami-hvm --architecture x86_64 --virtualization-type hvm --root-device-name /dev/xvda --ena-support --boot-mode legacy-bios --block-device-mappings 'DeviceName=/dev/xvda,Ebs={SnapshotId=SNAPSHOT-ID}'",
    ]);
  }, 600_000);

  it('verify -t ec2-hvm boots it from QEMU\'s NVMe controller to the login prompt, root on nvme0n1p1 by UUID', async (ctx) => {
    const { path } = await translated(ctx);
    const log = dir.file('real-hvm.log');
    const r = await cli('verify', path, '-t', 'ec2-hvm', '--log', log, '--json');
    const result = JSON.parse(r.stdout) as VerifyResult;
    expect(result, result.lastLines.join('\n')).toMatchObject({ result: 'booted', target: 'ec2-hvm', mode: 'disk', bus: 'nvme' });
    expect(r.code).toBe(0);
    expect(result.milestones.map((m) => m.name)).toEqual(expect.arrayContaining(['bootloader', 'kernel', 'root-mounted', 'init', 'login']));
    expect(result.command).toEqual(expect.arrayContaining(['-device', expect.stringMatching(/^nvme,serial=\w+,drive=root$/)]));
    const console = await readFile(log, 'latin1');
    expect(console).toMatch(new RegExp(`Kernel command line: .*root=UUID=${REAL_UUID}`));
    expect(console).toMatch(/EXT4-fs \(nvme0n1p1\): mounted filesystem/);
    expect(console).toMatch(/login: /);
  }, 900_000);

  it('VMDK streamOptimized and VHD, to a file and to s3://, are what import-snapshot takes', async (ctx) => {
    const input = await realAmi(ctx);
    const vmdk = dir.file('real-hvm.vmdk');
    const v = await translateJson(input, vmdk, '-t', 'ec2-hvm', '--no-clean');
    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', vmdk])).stdout) as { format: string; 'format-specific': { data: { 'create-type': string } } };
    expect(info.format).toBe('vmdk');
    expect(info['format-specific'].data['create-type']).toBe('streamOptimized');
    await run('qemu-img', ['check', vmdk]);
    expect(v.commands?.[1]).toContain('Format=VMDK,UserBucket={S3Bucket=YOUR-BUCKET,S3Key=real-hvm.vmdk}');
    const back = dir.file('real-hvm-vmdk.raw');
    await run('qemu-img', ['convert', '-O', 'raw', vmdk, back]);
    await checkDisk(back);
    expect(await guestFile(back, '/etc/fstab')).toMatch(new RegExp(`^UUID=${REAL_UUID}\\s+/\\s`, 'm'));

    let s3: S3Server | undefined;
    const saved = { ...process.env };
    try {
      s3 = await startS3('hvm-bucket');
      Object.assign(process.env, s3.env);
      const vhd = await translateJson(input, 's3://hvm-bucket/amis/real-hvm.vhd', '-t', 'ec2-hvm', '--no-clean');
      expect(vhd).toMatchObject({ output: 's3://hvm-bucket/amis/real-hvm.vhd', format: 'vhd' });
      // Already in S3: no upload step; import-snapshot reads the object where it is.
      expect(vhd.commands?.[0]).toBe("aws ec2 import-snapshot --description 'amitrans ami-hvm' --disk-container 'Format=VHD,UserBucket={S3Bucket=hvm-bucket,S3Key=amis/real-hvm.vhd}'");
      const fetched = dir.file('fetched.vhd');
      const got = await cli('convert', 's3://hvm-bucket/amis/real-hvm.vhd', fetched, '-O', 'vhd');
      expect(got.code, got.stderr).toBe(0);
      const vhdInfo = JSON.parse((await run('qemu-img', ['info', '--output=json', fetched])).stdout) as { format: string };
      expect(vhdInfo.format).toBe('vpc');
      await run('qemu-img', ['check', '-f', 'vpc', fetched]).catch((err: unknown) => {
        // qemu-img check reports "does not support checks" for vpc: only a real failure counts.
        if (!/does not support checks/.test(String(err))) throw err;
      });
      const vhdRaw = dir.file('real-hvm-vhd.raw');
      await run('qemu-img', ['convert', '-f', 'vpc', '-O', 'raw', fetched, vhdRaw]);
      await checkDisk(vhdRaw);
      expect(await guestFile(vhdRaw, '/etc/fstab')).toMatch(new RegExp(`^UUID=${REAL_UUID}\\s+/\\s`, 'm'));
    } finally {
      process.env = saved;
      await s3?.close();
    }
  }, 900_000);

  it('refuses what import-snapshot does not take, and device names for the root, as usage errors', async (ctx) => {
    const input = await realAmi(ctx);
    for (const [args, message] of [
      [['-O', 'qcow2'], /ec2-hvm output: qcow2 is not taken: VM Import \(import-snapshot\) takes RAW, VMDK streamOptimized and VHD/],
      [['-o', 'subformat=monolithicSparse', '-O', 'vmdk'], /-o subformat=monolithicSparse is not taken/],
      [['-O', 'raw', '-o', 'compress=gzip'], /gzip-compressed raw is not taken/],
      [['-O', 'raw', '--root-by', 'device'], /--root-by device: on ec2-hvm NVMe device names are not stable/],
    ] as const) {
      const out = dir.file('refused.img');
      const r = await cli('translate', input, out, '-t', 'ec2-hvm', ...args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(await readFile(out).then(() => true, () => false)).toBe(false);
    }
  }, 600_000);
});

describe('a kernel whose initrd lacks nvme (Debian\'s generic kernel: nvme and ext4 are modules)', () => {
  it('the initrd step adds nvme (and ena, and their dependencies); the disk boots from NVMe', async (ctx) => {
    requireTools(ctx, 'qemu-system-x86_64', 'qemu-img', 'mkinitramfs', 'lsinitramfs', 'unmkinitramfs', 'debugfs');
    const input = await remember(await genericKernelAmi(ctx));
    const inspect = JSON.parse((await cli('inspect', input, '--json')).stdout) as { report: { kernels: { version: string; initrdModules: string[]; drivers: Record<string, string> }[]; verdicts: { target: string; changes: string[]; platforms?: string[] }[] } };
    const k = inspect.report.kernels[0]!;
    expect(k.drivers).toMatchObject({ nvme: 'module', ena: 'module', xen_blkfront: 'module' });
    expect(k.initrdModules).toContain('xen_blkfront');
    expect(k.initrdModules).not.toContain('nvme');
    const v = inspect.report.verdicts.find((x) => x.target === 'ec2-hvm')!;
    expect(v.platforms).toEqual(['Nitro', 'Xen HVM']);
    expect(v.changes).toContain(`initrd: the initrd step adds nvme, ena, xen_netfront (with their dependencies) to the initramfs-tools initrd /boot/initrd.img-${k.version}`);

    const out = dir.file('generic-hvm.vmdk');
    const dry = await translateJson(input, out, '-t', 'ec2-hvm', '--dry-run');
    const result = await translateJson(input, out, '-t', 'ec2-hvm');
    expect(dry.changes.map((c) => `${c.action} ${c.file}`)).toEqual(result.changes.map((c) => `${c.action} ${c.file}`));
    expect(result.changes.find((c) => c.step === 'initrd')?.after).toEqual(expect.arrayContaining([expect.stringMatching(/nvme-core\.ko nvme\.ko ena\.ko/)]));
    // The oracles read the new initrd: the initrd step rewrites its main archive, so
    // Debian's own lsinitramfs lists the added modules and unmkinitramfs extracts them.
    const raw = dir.file('generic-hvm.raw');
    await run('qemu-img', ['convert', '-O', 'raw', out, raw]);
    await checkDisk(raw);
    const after = dir.file('generic-initrd.after');
    await run('debugfs', ['-R', `dump /boot/initrd.img-${k.version} ${after}`, `${raw}?offset=${PART}`]);
    const added = (await run('lsinitramfs', [after])).stdout;
    expect(added).toMatch(/kernel\/drivers\/nvme\/host\/nvme\.ko$/m);
    expect(added).toMatch(/kernel\/drivers\/nvme\/host\/nvme-core\.ko$/m);
    expect(added).toMatch(/ethernet\/amazon\/ena\/ena\.ko$/m);
    expect(added).toMatch(/modules\.dep\.bin$/m);
    expect(added).toMatch(/xen-blkfront\.ko$/m);
    // modprobe (the oracle for the index) resolves nvme through the initrd's modules.dep.bin.
    const seg = dir.file('generic-initrd-root');
    await run('unmkinitramfs', [after, seg]);
    const main = existsSync(`${seg}/main`) ? `${seg}/main` : seg;
    const usr = existsSync(`${main}/usr/lib/modules`) ? `${main}/usr` : main;
    const deps = (await run('modprobe', ['-d', usr, '-S', k.version, '--show-depends', 'nvme'])).stdout;
    expect(deps).toMatch(/insmod \S+\/nvme-core\.ko\s*\ninsmod \S+\/nvme\.ko/);

    const log = dir.file('generic-hvm.log');
    const r = await cli('verify', out, '-t', 'ec2-hvm', '--expect', 'AMITRANS-BOOT-OK', '--log', log, '--json');
    const booted = JSON.parse(r.stdout) as VerifyResult;
    expect(booted, booted.lastLines.join('\n')).toMatchObject({ result: 'booted', bus: 'nvme' });
    expect(await readFile(log, 'latin1')).toMatch(new RegExp(`AMITRANS-BOOT-OK kernel=\\S+ root=/dev/nvme0n1p1 cmdline=.*root=UUID=${GENERIC_UUID}.*nvme_core\\.io_timeout=4294967295`));
  }, 900_000);
});

describe('guests that cannot run on Nitro, or on HVM at all', () => {
  async function image(ctx: Ctx, name: string, fx: () => GuestFixture): Promise<string> {
    requireTools(ctx, 'mkfs.ext3', 'cpio', 'gzip', 'sfdisk', 'e2fsck');
    const f = fx();
    const path = dir.file(`${name}.img`);
    await buildGuestImage(f.spec, path, f.image);
    return remember(path);
  }

  it('no nvme driver at all (Amazon Linux 2013.09): "Xen HVM only: no NVMe driver"; translate refuses unless --allow-xen-hvm-only', async (ctx) => {
    const input = await image(ctx, 'amazon', amazonLinuxGuest);
    const inspect = JSON.parse((await cli('inspect', input, '--json')).stdout) as { report: { verdicts: { target: string; status: string; bus?: string; platforms?: string[]; reasons: string[] }[] } };
    const v = inspect.report.verdicts.find((x) => x.target === 'ec2-hvm')!;
    expect(v).toMatchObject({ status: 'boots-after-translation', bus: 'xen', platforms: ['Xen HVM'] });
    expect(v.reasons).toEqual([expect.stringMatching(/^Xen HVM only: no NVMe driver \(nvme neither built in, in the initrd, nor a module the initrd step can add\), no ENA driver/)]);

    const out = dir.file('amazon-hvm.raw');
    const refused = await cli('translate', input, out, '-t', 'ec2-hvm');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/will not boot on Nitro \(ec2-hvm\): Xen HVM only: no NVMe driver.*--allow-xen-hvm-only/);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    expect(await readFile(out).then(() => true, () => false)).toBe(false);

    const written = await translateJson(input, out, '-t', 'ec2-hvm', '--allow-xen-hvm-only');
    expect(written.verdict).toMatchObject({ bus: 'xen', platforms: ['Xen HVM'] });
    expect(written.commands?.at(-1)).toMatch(/ --no-ena-support /);
    await checkDisk(out);
    expect(await guestFile(out, '/etc/fstab')).toMatch(/^UUID=b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e\s+\/\s/m);
  }, 600_000);

  it('only a XenLinux kernel (CentOS 5 el5xen): will not boot on HVM, and why', async (ctx) => {
    const input = await image(ctx, 'centos5', () => centos5Guest());
    const inspect = JSON.parse((await cli('inspect', input, '--json')).stdout) as { report: { verdicts: { target: string; status: string; reasons: string[] }[] } };
    const reason = `will not boot on HVM: only XenLinux kernels (${CENTOS5.xenVersion}), which boot only as Xen PV guests (CONFIG_X86_XEN); a pvops kernel (2.6.32 or later with CONFIG_XEN) is needed`;
    expect(inspect.report.verdicts.find((x) => x.target === 'ec2-hvm')).toMatchObject({ status: 'will-not-boot', reasons: [reason] });
    const out = dir.file('centos5-hvm.raw');
    const r = await cli('translate', input, out, '-t', 'ec2-hvm');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${input}: will not boot on ec2-hvm: ${reason}`);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(await readFile(out).then(() => true, () => false)).toBe(false);
  }, 600_000);
});
