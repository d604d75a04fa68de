import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildDebianAmi,
  realDebianInitrdAmi,
  requireTools,
  run,
  sha256File,
  tmpDir,
  type TmpDir,
} from '@amitrans/testkit';
import type { TranslateResult, VerifyResult } from '@amitrans/diskimg';
import { cli, expectDryRunEqualsRun } from './helpers.js';

// The realistic Debian AMI (debootstrap, systemd, udev, ifupdown, openssh) with its initrd
// rebuilt as an AMI's is, xen-blkfront only (no virtio, no ata): by the guest's own
// mkinitramfs (MODULES=list) and by Debian's dracut (--no-hostonly). Each (fixture, target)
// pair is translated once and boots once, through `amitrans verify`, to the login prompt.
let dir: TmpDir;
const PART_OFFSET = 2048 * 512;
type Ctx = { skip: (note?: string) => void };
type Kind = 'initramfs-tools' | 'dracut';
const fixtures = new Map<Kind, Promise<{ ami: string; hash: string }>>();

async function fixture(ctx: Ctx, kind: Kind): Promise<{ ami: string; hash: string }> {
  requireTools(ctx, 'debootstrap', 'mkfs.ext3', 'debugfs');
  let p = fixtures.get(kind);
  if (!p) {
    p = realDebianInitrdAmi(ctx, kind).then(async (ami) => ({ ami, hash: await sha256File(ami) }));
    fixtures.set(kind, p);
  }
  return p;
}

beforeAll(async () => {
  dir = await tmpDir('amitrans-cli-initrd-');
});
afterAll(async () => {
  // The inputs are never written.
  for (const p of fixtures.values()) {
    const f = await p.catch(() => undefined);
    if (f) expect(await sha256File(f.ami)).toBe(f.hash);
  }
  await dir.remove();
});

/** `amitrans verify --json --log` of a translated image: the result and the console log. */
async function verifyBoot(image: string, name: string): Promise<{ result: VerifyResult; log: string }> {
  const log = dir.file(`${name}.log`);
  const r = await cli('verify', image, '--log', log, '--json');
  expect(r.stderr).toBe('');
  const result = JSON.parse(r.stdout) as VerifyResult;
  expect(result, result.lastLines.join('\n')).toMatchObject({ result: 'booted' });
  expect(r.code).toBe(0);
  return { result, log: await readFile(log, 'latin1') };
}

function milestone(r: VerifyResult, name: string): string {
  return r.milestones.find((m) => m.name === name)?.line ?? '';
}

/** The initrd of a translated raw disk, listed by lsinitramfs (the oracle). */
async function lsinitramfs(raw: string, name: string): Promise<string[]> {
  const ls = await run('debugfs', ['-R', 'ls -l /boot', `${raw}?offset=${PART_OFFSET}`]);
  const initrd = /initrd\.img-\S+/.exec(ls.stdout)![0];
  const out = dir.file(`${name}.initrd`);
  await run('debugfs', ['-R', `dump /boot/${initrd} ${out}`, `${raw}?offset=${PART_OFFSET}`]);
  return (await run('lsinitramfs', [out])).stdout.split('\n');
}

describe('the initrd step on the Debian AMI whose initramfs-tools initrd has only xen-blkfront', () => {
  it('inspect: kvm boots after translation because the initrd step adds virtio_blk; without it, it would not', async (ctx) => {
    const { ami } = await fixture(ctx, 'initramfs-tools');
    const human = await cli('inspect', ami);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/kvm: +boots after translation: the initrd step adds virtio_blk, virtio_pci, virtio_net \(kernel \S+, virtio disk\)/);
    // --skip initrd judges by the initrd as it is: nothing kvm can drive the disk with.
    const skipped = await cli('translate', '--target', 'kvm', '--skip', 'initrd', '--dry-run', '--json', ami, dir.file('never.qcow2'));
    expect(skipped.code).not.toBe(0);
    expect(skipped.stderr).toMatch(/will not boot on kvm: .*virtio_blk.*\(the initrd step is skipped\)/);
  }, 300_000);

  it('translate --target kvm: --dry-run reports what the run does; lsinitramfs lists the added modules; input untouched; e2fsck clean; verify boots it on virtio to the login prompt', async (ctx) => {
    requireTools(ctx, 'qemu-system-x86_64', 'e2fsck', 'lsinitramfs');
    const { ami, hash } = await fixture(ctx, 'initramfs-tools');
    // Raw, so e2fsck, debugfs and verify all read the one output.
    const out = dir.file('kvm.raw');
    const dry = await cli('translate', '--target', 'kvm', '-O', 'raw', '--dry-run', '--json', ami, out);
    expect(dry.code).toBe(0);
    const real = await cli('translate', '--target', 'kvm', '-O', 'raw', '--json', ami, out);
    expect(real.code).toBe(0);
    const pick = (r: string): TranslateResult['changes'] => (JSON.parse(r) as TranslateResult).changes.filter((c) => c.step === 'initrd');
    const changes = pick(real.stdout);
    expect(pick(dry.stdout)).toEqual(changes);
    expect(changes).toHaveLength(1);
    expect(changes[0]!.why).toMatch(/^initramfs-tools initrd of \S+: virtio_blk, virtio_pci, virtio_net must load/);
    expect(changes[0]!.after!.join('\n')).toMatch(/conf\/modules: \+ virtio_blk virtio_pci virtio_net/);
    expect(changes[0]!.after!.join('\n')).toMatch(/the main archive rewritten with them \(gzip;/);
    expect(await sha256File(ami)).toBe(hash);
    await run('e2fsck', ['-fn', `${out}?offset=${PART_OFFSET}`]);
    const listed = await lsinitramfs(out, 'kvm');
    for (const m of ['virtio_blk.ko', 'virtio_pci.ko', 'virtio_net.ko', 'xen-blkfront.ko']) expect(listed.some((l) => l.endsWith(`/${m}`)), m).toBe(true);
    expect(listed.filter((l) => l === 'conf/modules')).toEqual(['conf/modules']);
    const { result, log } = await verifyBoot(out, 'kvm');
    expect(result).toMatchObject({ target: 'kvm', bus: 'virtio' });
    expect(log).toMatch(/virtio_blk virtio\d+: \[vda\]/);
    expect(milestone(result, 'root-mounted')).toMatch(/\(vda1\)/);
    expect(result.milestones.map((m) => m.name)).toEqual(expect.arrayContaining(['bootloader', 'kernel', 'root-mounted', 'init', 'login']));
  }, 900_000);

  it('translate --target virtualbox: ata_piix and sd_mod added; verify boots it on IDE to the login prompt', async (ctx) => {
    requireTools(ctx, 'qemu-system-x86_64');
    const { ami } = await fixture(ctx, 'initramfs-tools');
    const out = dir.file('vbox.vdi');
    const r = await cli('translate', '--target', 'virtualbox', '--json', ami, out);
    expect(r.code).toBe(0);
    const translated = JSON.parse(r.stdout) as TranslateResult;
    expect(translated.verdict.bus).toBe('ide');
    expect(translated.changes.find((c) => c.step === 'initrd')?.after?.join('\n')).toMatch(/conf\/modules: \+ ata_piix sd_mod/);
    const { result } = await verifyBoot(out, 'vbox');
    expect(result).toMatchObject({ target: 'virtualbox', bus: 'ide' });
    expect(milestone(result, 'root-mounted')).toMatch(/\(sda1\)/);
  }, 900_000);

  it('an initrd whose flavour is not known (the busybox one) is refused, naming kernel and initrd; --skip initrd goes on', async (ctx) => {
    requireTools(ctx, 'mkfs.ext3', 'depmod', 'cpio');
    const ami = dir.file('debian-busybox.img');
    await buildDebianAmi(ctx, ami);
    const refused = await cli('translate', '--target', 'kvm', '--initrd-add', 'e1000', '--dry-run', ami, dir.file('x.qcow2'));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/initrd \/boot\/initrd\.img-\S+ of kernel \S+: its flavour is busybox.*use --skip initrd/);
    const skipped = await cli('translate', '--target', 'kvm', '--initrd-add', 'e1000', '--skip', 'initrd', '--dry-run', '--json', ami, dir.file('x.qcow2'));
    expect(skipped.code).toBe(0);
    expect((JSON.parse(skipped.stdout) as TranslateResult).changes.some((c) => c.step === 'initrd')).toBe(false);
  }, 300_000);
});

describe('the initrd step on the Debian AMI whose dracut initrd (Debian dracut --no-hostonly) has only xen-blkfront', () => {
  it('translate --target kvm adds rd.driver.pre; verify boots it on virtio to the login prompt', async (ctx) => {
    requireTools(ctx, 'qemu-system-x86_64');
    const { ami } = await fixture(ctx, 'dracut');
    const out = dir.file('dracut-kvm.qcow2');
    const r = await cli('translate', '--target', 'kvm', '--json', ami, out);
    expect(r.code).toBe(0);
    const change = (JSON.parse(r.stdout) as TranslateResult).changes.find((c) => c.step === 'initrd');
    expect(change?.why).toMatch(/^dracut initrd of /);
    expect(change?.after?.join('\n')).toMatch(/etc\/cmdline\.d\/90-amitrans\.conf: rd\.driver\.pre=virtio_blk,virtio_pci,virtio_net/);
    const { result } = await verifyBoot(out, 'dracut-kvm');
    expect(result).toMatchObject({ target: 'kvm', bus: 'virtio' });
    expect(milestone(result, 'root-mounted')).toMatch(/\(vda1\)/);
  }, 900_000);

  it('translate --target virtualbox adds the IDE drivers; verify boots it on IDE to the login prompt', async (ctx) => {
    requireTools(ctx, 'qemu-system-x86_64');
    const { ami } = await fixture(ctx, 'dracut');
    const out = dir.file('dracut-vbox.vdi');
    const r = await cli('translate', '--target', 'virtualbox', '--json', ami, out);
    expect(r.code).toBe(0);
    const translated = JSON.parse(r.stdout) as TranslateResult;
    expect(translated.verdict.bus).toBe('ide');
    expect(translated.changes.find((c) => c.step === 'initrd')?.after?.join('\n')).toMatch(/rd\.driver\.pre=ata_piix,sd_mod/);
    const { result } = await verifyBoot(out, 'dracut-vbox');
    expect(result).toMatchObject({ target: 'virtualbox', bus: 'ide' });
    expect(milestone(result, 'root-mounted')).toMatch(/\(sda1\)/);
  }, 900_000);

  // kvm (modules added, rd.driver.pre) and eucalyptus (the naming mask appended): the other
  // targets' steps are compared on the busybox and GRUB 2 fixtures.
  it('--dry-run lists exactly the changes the run makes, for kvm and eucalyptus', async (ctx) => {
    const { ami } = await fixture(ctx, 'dracut');
    await expectDryRunEqualsRun(ami, (kind, target) => dir.file(`dracut-${kind}-${target}.img`), ['kvm', 'eucalyptus']);
  }, 900_000);
});

describe('--dry-run on the initramfs-tools AMI', () => {
  it('lists exactly the changes the run makes, for kvm and eucalyptus', async (ctx) => {
    const { ami } = await fixture(ctx, 'initramfs-tools');
    await expectDryRunEqualsRun(ami, (kind, target) => dir.file(`it-${kind}-${target}.img`), ['kvm', 'eucalyptus']);
  }, 900_000);
});
