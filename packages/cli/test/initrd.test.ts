import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildDebianAmi,
  buildFixtureInitrd,
  qemuBoot,
  requireTools,
  run,
  sha256File,
  tmpDir,
  type TmpDir,
} from '@amitrans/testkit';
import type { TranslateResult } from '@amitrans/diskimg';
import { cli, expectDryRunEqualsRun } from './helpers.js';

// The Debian PV AMI with its initrd made by Debian's own mkinitramfs (MODULES=list,
// xen-blkfront only: no virtio, no ata), as an AMI's initrd is.
let dir: TmpDir;
let building: Promise<{ ami: string; hash: string }> | undefined;
const PART_OFFSET = 2048 * 512;
type Ctx = { skip: (note?: string) => void };

async function fixture(ctx: Ctx): Promise<{ ami: string; hash: string }> {
  requireTools(ctx, 'mkfs.ext3', 'depmod', 'cpio', 'mkinitramfs');
  building ??= (async () => {
    const initrd = await buildFixtureInitrd(ctx, 'initramfs-tools', ['xen-blkfront']);
    const ami = dir.file('debian-it.img');
    await buildDebianAmi(ctx, ami, { initrd });
    return { ami, hash: await sha256File(ami) };
  })();
  return building;
}

beforeAll(async () => {
  dir = await tmpDir('amitrans-cli-initrd-');
});
afterAll(async () => {
  await dir.remove();
});

describe('the initrd step on an AMI whose initramfs-tools initrd has only xen-blkfront', () => {
  it('inspect: kvm boots after translation because the initrd step adds virtio_blk; without it, it would not', async (ctx) => {
    const { ami } = await fixture(ctx);
    const human = await cli('inspect', ami);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/kvm: +boots after translation: the initrd step adds virtio_blk, virtio_pci, virtio_net \(kernel \S+, virtio disk\)/);
    // --skip initrd judges by the initrd as it is: nothing kvm can drive the disk with.
    const skipped = await cli('translate', '--target', 'kvm', '--skip', 'initrd', '--dry-run', '--json', ami, dir.file('never.qcow2'));
    expect(skipped.code).not.toBe(0);
    expect(skipped.stderr).toMatch(/will not boot on kvm: .*virtio_blk.*\(the initrd step is skipped\)/);
  }, 300_000);

  it('translate --target kvm: --dry-run reports what the run does; the new initrd boots under QEMU on virtio; input untouched; e2fsck clean', async (ctx) => {
    requireTools(ctx, 'qemu-system-x86_64', 'e2fsck');
    const { ami, hash } = await fixture(ctx);
    const out = dir.file('kvm.qcow2');
    const dry = await cli('translate', '--target', 'kvm', '--dry-run', '--json', ami, out);
    expect(dry.code).toBe(0);
    const real = await cli('translate', '--target', 'kvm', '--json', ami, out);
    expect(real.code).toBe(0);
    const pick = (r: string): TranslateResult['changes'] => (JSON.parse(r) as TranslateResult).changes.filter((c) => c.step === 'initrd');
    const changes = pick(real.stdout);
    expect(pick(dry.stdout)).toEqual(changes);
    expect(changes).toHaveLength(1);
    expect(changes[0]!.why).toMatch(/^initramfs-tools initrd of \S+: virtio_blk, virtio_pci, virtio_net must load/);
    expect(changes[0]!.after!.join('\n')).toMatch(/conf\/modules: \+ virtio_blk virtio_pci virtio_net/);
    expect(await sha256File(ami)).toBe(hash);
    const raw = dir.file('kvm.raw');
    await run('qemu-img', ['convert', '-O', 'raw', out, raw]);
    await run('e2fsck', ['-fn', `${raw}?offset=${PART_OFFSET}`]);
    const boot = await qemuBoot(out, { format: 'qcow2', iface: 'virtio', timeoutMs: 240_000 });
    expect(boot.output).toMatch(/virtio_blk virtio\d+: \[vda\]/);
    expect(boot.output).toMatch(/AMITRANS-BOOT-OK kernel=\S+ root=\/dev\/vda1/);
  }, 600_000);

  it('translate --target virtualbox: ata_piix and sd_mod added; boots under QEMU on IDE', async (ctx) => {
    requireTools(ctx, 'qemu-system-x86_64');
    const { ami } = await fixture(ctx);
    const out = dir.file('vbox.vdi');
    const r = await cli('translate', '--target', 'virtualbox', '--json', ami, out);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as TranslateResult;
    expect(result.verdict.bus).toBe('ide');
    expect(result.changes.find((c) => c.step === 'initrd')?.after?.join('\n')).toMatch(/conf\/modules: \+ ata_piix sd_mod/);
    const boot = await qemuBoot(out, { format: 'vdi', iface: 'ide', timeoutMs: 240_000 });
    expect(boot.output).toMatch(/AMITRANS-BOOT-OK kernel=\S+ root=\/dev\/sda1/);
  }, 600_000);

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

describe('the initrd step on an AMI whose dracut initrd (Debian dracut --no-hostonly) has only xen-blkfront', () => {
  it('translate --target kvm adds rd.driver.pre; boots under QEMU on virtio', async (ctx) => {
    requireTools(ctx, 'mkfs.ext3', 'depmod', 'cpio', 'dracut', 'qemu-system-x86_64');
    const initrd = await buildFixtureInitrd(ctx, 'dracut', ['xen-blkfront']);
    const ami = dir.file('debian-dracut.img');
    await buildDebianAmi(ctx, ami, { initrd });
    const out = dir.file('dracut-kvm.qcow2');
    const r = await cli('translate', '--target', 'kvm', '--json', ami, out);
    expect(r.code).toBe(0);
    const change = (JSON.parse(r.stdout) as TranslateResult).changes.find((c) => c.step === 'initrd');
    expect(change?.after?.join('\n')).toMatch(/etc\/cmdline\.d\/90-amitrans\.conf: rd\.driver\.pre=virtio_blk,virtio_pci,virtio_net/);
    const boot = await qemuBoot(out, { format: 'qcow2', iface: 'virtio', timeoutMs: 300_000 });
    expect(boot.output).toMatch(/AMITRANS-BOOT-OK kernel=\S+ root=\/dev\/vda1/);
    // --dry-run lists what the run does on this flavour too, for every target.
    await expectDryRunEqualsRun(ami, (kind, target) => dir.file(`dracut-${kind}-${target}.img`));
  }, 900_000);
});

describe('--dry-run on the initramfs-tools AMI', () => {
  it('lists exactly the changes the run makes, for every target', async (ctx) => {
    const { ami } = await fixture(ctx);
    await expectDryRunEqualsRun(ami, (kind, target) => dir.file(`it-${kind}-${target}.img`));
  }, 600_000);
});
