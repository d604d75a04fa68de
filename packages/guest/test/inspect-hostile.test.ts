/**
 * Hostile guest content: inspection gives a partial report with warnings, never a crash
 * or a hang, and reads a bounded amount (link loops, a 2 GiB initrd, cpio names with
 * "../", a truncated gzip, a 100 MB menu.lst). Also unit cases on an in-memory guest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectImage, readInitrdSummary, type ImageInspection } from '@amitrans/diskimg';
import {
  amazonLinuxGuest,
  buildGuestImage,
  CountingDevice,
  kernelConfig,
  packCpio,
  prng,
  requireTools,
  tmpDir,
  type TmpDir,
} from '@amitrans/testkit';
import { inspectGuest, MAX_INITRD_READ } from '../src/index.js';
import { cli } from '../../cli/test/helpers.js';
import { MemFs } from './memfs.js';

type Ctx = { skip: (note?: string) => void };

const GiB = 1024 ** 3;
let dir: TmpDir;
let building: Promise<string> | undefined;

beforeAll(async () => {
  dir = await tmpDir('amitrans-inspect-hostile-');
});
afterAll(async () => {
  await dir?.remove();
});

/** An Amazon Linux tree with hostile files in it (one image for every case). */
function hostileImage(ctx: Ctx): Promise<string> {
  requireTools(ctx, 'mkfs.ext4', 'cpio', 'gzip');
  building ??= (async () => {
    const fx = amazonLinuxGuest();
    const small = await packCpio({ cpio: { '/init': '#!/bin/sh\nmodprobe virtio_blk\n', '/lib/modules/1.0/virtio_blk.ko': 'x' } }, dir.path);
    fx.spec.kernels = [
      // A 2 GiB initrd: a real archive at its start, then a hole (mkfs -d keeps holes).
      { version: '1.0', config: kernelConfig({ VIRTIO_BLK: 'm', VIRTIO_PCI: 'y', EXT4_FS: 'y' }), modules: ['virtio_blk.ko'], initrd: { name: 'initrd.img-1.0', cpio: {} } },
      // Member names that climb out of the archive.
      { version: '2.0', initrd: { name: 'initrd.img-2.0', cpio: { '/init': '#!/bin/sh\n', '../../escape.ko': 'x', '../../../../../../etc/passwd': 'root::0:0', '/lib/modules/2.0/kernel/ok.ko': 'y' } } },
      // A gzip stream cut in the middle of a module's data.
      { version: '3.0', initrd: { name: 'initrd.img-3.0', cpio: { '/init': '#!/bin/sh\n', '/lib/modules/3.0/virtio_blk.ko': prng(3).bytes(200_000), '/lib/modules/3.0/zz_last.ko': 'z' }, cut: 100_000 } },
      // Its config is a link loop: the kernel is still reported.
      { version: '4.0', modules: ['xen-blkfront.ko'] },
    ];
    Object.assign(fx.spec.files!, {
      '/boot/initrd.img-1.0': { sparse: 2 * GiB, head: small },
      '/boot/config-4.0': { link: 'config-4.0.d/x' },
      '/boot/config-4.0.d/x': { link: '../config-4.0' },
      '/etc/fstab': { link: 'fstab.d/a' },
      '/etc/fstab.d/a': { link: '../fstab' },
      '/etc/inittab': { link: '/etc/inittab' },
      '/boot/grub/menu.lst': { sparse: 100 * 1024 * 1024, head: 'default 0\ntimeout 1\ntitle one\nroot (hd0)\nkernel /boot/vmlinuz-1.0 root=LABEL=/ console=hvc0\ninitrd /boot/initrd.img-1.0\n' },
      '/lib/modules/5.0/loop': { link: '/lib/modules/5.0/loop' },
      '/lib/modules/5.0/up': { link: '../../..' },
    });
    const path = dir.file('hostile.img');
    await buildGuestImage(fx.spec, path, { ...fx.image, size: '64M' });
    return path;
  })();
  return building;
}

describe('hostile guest content', () => {
  let result: ImageInspection;
  let counted: CountingDevice | undefined;
  const initrdSizes: number[] = [];

  async function inspectHostile(ctx: Ctx): Promise<ImageInspection> {
    const img = await hostileImage(ctx);
    result ??= await inspectImage(img, {
      wrapDevice: (d) => (counted = new CountingDevice(d)),
      readInitrd: (fs, path, size) => {
        initrdSizes.push(size);
        return readInitrdSummary(fs, path, size);
      },
    });
    return result;
  }

  it('a symlink loop at /etc/fstab and /etc/inittab: warnings, the rest of the report stands', async (ctx) => {
    const r = (await inspectHostile(ctx)).report;
    expect(r.fstab).toEqual([]);
    expect(r.warnings).toContain('/etc/fstab: too many levels of symbolic links resolving /etc/fstab');
    expect(r.warnings).not.toContain('/etc/fstab: missing');
    expect(r.warnings).toContain('/etc/inittab: too many levels of symbolic links resolving /etc/inittab');
    // The other console sources still count, and so does what they mean for the verdicts.
    expect(r.consoles.map((c) => `${c.device}/${c.source}`)).toEqual(['console/securetty', 'tty1/securetty', 'hvc0/securetty', 'hvc0/upstart']);
    expect(r.verdicts.find((v) => v.target === 'eucalyptus')?.changes).toContain('consoles: hvc0 -> ttyS0');
    expect(r.distro.id).toBe('amzn');
    expect(r.modprobe).toHaveLength(1);
  });

  it('a 2 GiB initrd is read up to the cap, with a warning, and its archive still listed', async (ctx) => {
    const r = (await inspectHostile(ctx)).report;
    const k = r.kernels.find((x) => x.version === '1.0')!;
    expect(k.initrd).toBe('/boot/initrd.img-1.0');
    expect(k.initrdModules).toEqual(['virtio_blk']);
    expect(k.initrdDrivers).toEqual(['virtio_blk']);
    expect(r.warnings).toContain(`/boot/initrd.img-1.0: ${2 * GiB} bytes, larger than any initrd a boot loader loads; only its first ${MAX_INITRD_READ} bytes were read`);
    expect(Math.max(...initrdSizes)).toBe(MAX_INITRD_READ);
  });

  it('cpio member names with ../ are listed inside the archive root, with warnings', async (ctx) => {
    const r = (await inspectHostile(ctx)).report;
    const k = r.kernels.find((x) => x.version === '2.0')!;
    expect(k.initrdModules).toEqual(['escape', 'ok']);
    expect(r.warnings).toContain('/boot/initrd.img-2.0: member name "../../escape.ko" is climbing out of the archive root; listed as /escape.ko');
    expect(r.warnings).toContain('/boot/initrd.img-2.0: member name "../../../../../../etc/passwd" is climbing out of the archive root; listed as /etc/passwd');
  });

  it('a truncated gzip initrd gives what was read before the cut, and a warning', async (ctx) => {
    const r = (await inspectHostile(ctx)).report;
    const k = r.kernels.find((x) => x.version === '3.0')!;
    expect(k.initrdModules).toEqual(['virtio_blk']);
    expect(r.warnings.filter((w) => w.startsWith('/boot/initrd.img-3.0: ')).join('\n')).toMatch(/truncated|ends|unexpected end/i);
  });

  it('a 100 MB menu.lst is parsed from its first MiB, with a warning', async (ctx) => {
    const r = (await inspectHostile(ctx)).report;
    expect(r.warnings).toContain('/boot/grub/menu.lst: larger than 1 MiB; only its start was read');
    expect(r.bootConfigs).toHaveLength(1);
    expect(r.bootConfigs[0]!.entries).toMatchObject([{ title: 'one', root: '(hd0)', kernel: '/boot/vmlinuz-1.0', rootArg: 'LABEL=/', initrd: '/boot/initrd.img-1.0' }]);
    expect(r.kernels.find((k) => k.version === '1.0')?.isDefault).toBe(true);
  });

  it('a kernel whose config is a link loop is still reported; module-tree link loops are not followed', async (ctx) => {
    const r = (await inspectHostile(ctx)).report;
    const k = r.kernels.find((x) => x.version === '4.0')!;
    expect(k.config).toBeUndefined();
    expect(k.drivers.xen_blkfront).toBe('module');
    expect(k.moduleCount).toBe(1);
    expect(r.warnings).toContain('/boot/config-4.0: too many levels of symbolic links resolving /boot/config-4.0');
    expect(r.modulesWithoutKernel).toEqual(['5.0']);
    expect(r.kernels.map((x) => x.version)).toEqual(['1.0', '2.0', '3.0', '4.0']);
  });

  it('reads little of the image: metadata, small files and initrd archives only', async (ctx) => {
    await inspectHostile(ctx);
    expect(counted).toBeDefined();
    expect(counted!.bytes).toBeLessThan(16 * 1024 * 1024);
  });

  it('the CLI prints the partial report and exits 0', async (ctx) => {
    const img = await hostileImage(ctx);
    const r = await cli('inspect', img);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^Warnings$/m);
    expect(r.stdout).toContain('/etc/fstab: too many levels of symbolic links');
  });
});


describe('inspection rules on an in-memory guest', () => {
  it('GRUB legacy "default=1" makes the second entry the default kernel', async () => {
    const fs = new MemFs()
      .file('/boot/vmlinuz-1', 'k').file('/boot/vmlinuz-2', 'k')
      .file('/boot/grub/menu.lst', 'default=1\ntimeout=3\ntitle a\nroot (hd0)\nkernel /boot/vmlinuz-1 root=/dev/xvda1\ntitle b\nroot (hd0)\nkernel /boot/vmlinuz-2 root=/dev/xvda1\n');
    const r = await inspectGuest(fs, { layout: 'bare-filesystem' });
    expect(r.bootConfigs[0]).toMatchObject({ defaultIndex: 1, timeout: 3 });
    expect(r.kernels.map((k) => [k.version, k.isDefault])).toEqual([['1', false], ['2', true]]);
  });

  it('a kernel without a boot entry: translation must add one', async () => {
    const fs = new MemFs()
      .file('/boot/vmlinuz-old', 'k').file('/boot/config-old', kernelConfig({ X86_64_XEN: 'y', XEN_BLKDEV_FRONTEND: 'y', EXT3_FS: 'y' }))
      .file('/boot/vmlinuz-new', 'k').file('/boot/config-new', kernelConfig({ VIRTIO_BLK: 'y', VIRTIO_PCI: 'y', EXT4_FS: 'y' }))
      .file('/boot/grub/stage1', 's').file('/boot/grub/stage2', 's')
      .file('/etc/fstab', 'LABEL=root / ext3 defaults 1 1\n')
      .file('/boot/grub/menu.lst', 'title old\nroot (hd0)\nkernel /boot/vmlinuz-old root=LABEL=root console=ttyS0\n');
    const r = await inspectGuest(fs, { layout: 'bare-filesystem', filesystem: { type: 'ext3', label: 'root', uuid: 'u', inodeSize: 128 } });
    const kvm = r.verdicts.find((v) => v.target === 'kvm')!;
    expect(kvm).toMatchObject({ status: 'boots-after-translation', kernel: 'new', bus: 'virtio' });
    expect(kvm.changes).toContain('bootloader config: add an entry for new and make it the default');
    const xen = r.verdicts.find((v) => v.target === 'xenserver')!;
    expect(xen).toMatchObject({ status: 'boots-after-translation', kernel: 'old', bus: 'xen' });
    // A XenLinux kernel's console is xvc0 (pvops kernels have hvc0).
    expect(xen.changes).toEqual(['bootloader config: console=xvc0']);
  });

  it('device names: /dev/xvda on XenServer for a bare filesystem, partition 1 of the disk elsewhere', async () => {
    const base = (): MemFs => new MemFs()
      .file('/boot/vmlinuz-k', 'k').file('/boot/config-k', kernelConfig({ VIRTIO_BLK: 'y', VIRTIO_PCI: 'y', XEN_BLKDEV_FRONTEND: 'y', EXT4_FS: 'y' }))
      .file('/boot/grub/stage1', 's').file('/boot/grub/stage2', 's');
    const withRoot = (dev: string): MemFs => base()
      .file('/etc/fstab', `${dev} / ext4 defaults 1 1\n`)
      .file('/boot/grub/menu.lst', `title k\nroot (hd0)\nkernel /boot/vmlinuz-k root=${dev} console=hvc0\n`);
    const changes = async (dev: string, target: string): Promise<string[]> =>
      (await inspectGuest(withRoot(dev), { layout: 'bare-filesystem' })).verdicts.find((v) => v.target === target)!.changes.filter((c) => c.includes(dev));
    expect(await changes('/dev/xvda', 'xenserver')).toEqual([]);
    expect(await changes('/dev/xvda1', 'xenserver')).toEqual(['fstab: root /dev/xvda1 is named for another hypervisor', 'bootloader config: root=/dev/xvda1 is named for another hypervisor']);
    expect(await changes('/dev/vda1', 'kvm')).toEqual([]);
    expect(await changes('/dev/vda', 'kvm')).toEqual(['fstab: root /dev/vda is named for another hypervisor', 'bootloader config: root=/dev/vda is named for another hypervisor']);
    expect(await changes('/dev/sda1', 'eucalyptus')).toEqual([]);
  });
});
