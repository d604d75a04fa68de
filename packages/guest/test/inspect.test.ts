/**
 * `amitrans inspect --json` on guests built at test time: synthetic CentOS 5, Amazon Linux,
 * Ubuntu 12.04 and Amazon-AKI layouts (testkit guests.ts, `mkfs.ext* -d`), and a PV AMI
 * from real Debian packages (scripts/make-debian-ami.sh). Every report field is compared
 * with what the fixture was built with.
 */
import { readdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AKI,
  AMAZON,
  amazonAkiGuest,
  amazonLinuxGuest,
  buildDebianAmi,
  buildGuestImage,
  CENTOS5,
  centos5Guest,
  debRoot,
  requireTools,
  run,
  tmpDir,
  UBUNTU1204,
  ubuntu1204Guest,
  type GuestFixture,
  type TmpDir,
} from '@amitrans/testkit';
import type { ImageInspection } from '@amitrans/diskimg';
import { DRIVER_NAMES, NO_BOOTLOADER, verdictFor, type BootEntry, type DriverName, type DriverStatus, type GuestReport, type Verdict } from '../src/index.js';
import { cli } from '../../cli/test/helpers.js';

type Ctx = { skip: (note?: string) => void };

let dir: TmpDir;
const built = new Map<string, Promise<string>>();

beforeAll(async () => {
  dir = await tmpDir('amitrans-inspect-');
});
afterAll(async () => {
  await dir?.remove();
});

/** Build a fixture once (the first test that needs it waits for it). */
function image(ctx: Ctx, name: string, fx: () => GuestFixture): Promise<string> {
  requireTools(ctx, 'mkfs.ext3', 'cpio', 'gzip', 'sfdisk');
  let p = built.get(name);
  if (!p) {
    const f = fx();
    const path = dir.file(`${name}.img`);
    p = buildGuestImage(f.spec, path, f.image).then(() => path);
    built.set(name, p);
  }
  return p;
}

async function inspectJson(...args: string[]): Promise<ImageInspection> {
  const r = await cli('inspect', ...args, '--json');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as ImageInspection;
}

/** A full driver map: the given statuses, every other driver `rest`. */
function drivers(given: Partial<Record<DriverName, DriverStatus>>, rest: DriverStatus = 'absent'): Record<DriverName, DriverStatus> {
  return Object.fromEntries(DRIVER_NAMES.map((d) => [d, given[d] ?? rest])) as Record<DriverName, DriverStatus>;
}

function entry(e: Omit<BootEntry, 'args' | 'consoles' | 'rootArg'> & { args: string }): BootEntry {
  const args = e.args.split(/\s+/).filter(Boolean);
  const out: BootEntry = { ...e, args, consoles: args.filter((a) => a.startsWith('console=')).map((a) => a.slice(8)) };
  const root = args.find((a) => a.startsWith('root='));
  if (root) out.rootArg = root.slice(5);
  return out;
}

function verdict(target: Verdict['target'], status: Verdict['status'], o: { kernel?: string; bus?: Verdict['bus']; changes?: string[]; reasons?: string[]; platforms?: string[] } = {}): Verdict {
  const v: Verdict = { target, status, changes: o.changes ?? [], reasons: o.reasons ?? [] };
  if (o.kernel) v.kernel = o.kernel;
  if (o.bus) v.bus = o.bus;
  if (o.platforms) v.platforms = o.platforms;
  return v;
}

const NO_CLOUD = { metadataFetches: [], cloudInit: false, cloudInitState: false };

describe('CentOS 5 PV AMI (kernel-xen only, nash initrd, grub.conf, xvc0)', () => {
  const xv = CENTOS5.xenVersion;
  const xenKernel = {
    version: xv,
    vmlinuz: `/boot/vmlinuz-${xv}`,
    modulesDir: `/lib/modules/${xv}`,
    initrd: `/boot/initrd-${xv}.img`,
    config: `/boot/config-${xv}`,
    xenOnly: true,
    drivers: drivers({ xen_blkfront: 'module', xen_netfront: 'module', sd_mod: 'module', ext2: 'builtin', ext3: 'module', jbd: 'module' }),
    moduleCount: 8,
    isDefault: true,
    initrdFlavour: 'nash',
    initrdModules: ['ehci_hcd', 'ext3', 'jbd', 'ohci_hcd', 'uhci_hcd', 'xenblk'],
    initrdDrivers: ['xen_blkfront', 'ext3', 'jbd'],
  };
  const xenEntry = entry({ title: `CentOS (${xv})`, root: '(hd0)', kernel: `/boot/vmlinuz-${xv}`, args: 'ro root=/dev/sda1 console=xvc0', initrd: `/boot/initrd-${xv}.img`, line: 4 });
  const common = (r: GuestReport, arch: 'x86_64' | 'i386'): void => {
    expect(r.distro).toEqual({ id: 'centos', name: 'CentOS', version: '5.11', family: 'redhat', source: '/etc/redhat-release' });
    expect(r.arch).toBe(arch);
    expect(r.layout).toBe('bare-filesystem');
    expect(r.filesystem).toMatchObject({ type: 'ext3', label: '/', uuid: 'a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d', inodeSize: 128 });
    expect(r.modulesWithoutKernel).toEqual([]);
    expect(r.pvgrub).toEqual({ hd0: true, hd00: false });
    expect(r.fstab).toEqual([
      { spec: '/dev/sda1', kind: 'device', mountpoint: '/', type: 'ext3', options: ['defaults'], freq: 1, passno: 1, line: 0 },
      { spec: '/dev/sda2', kind: 'device', mountpoint: '/mnt', type: 'ext3', options: ['defaults'], freq: 0, passno: 0, line: 1 },
      { spec: '/dev/sda3', kind: 'device', mountpoint: 'swap', type: 'swap', options: ['defaults'], freq: 0, passno: 0, line: 2 },
      { spec: 'none', kind: 'other', mountpoint: '/proc', type: 'proc', options: ['defaults'], freq: 0, passno: 0, line: 3 },
    ]);
    expect(r.consoles).toEqual([
      { device: 'tty1', source: 'inittab', file: '/etc/inittab', line: 3 },
      { device: 'xvc0', source: 'inittab', file: '/etc/inittab', line: 4 },
      ...['console', 'vc/1', 'tty1', 'xvc0'].map((device, line) => ({ device, source: 'securetty', file: '/etc/securetty', line })),
    ]);
    expect(r.modprobe).toEqual([
      { alias: 'eth0', module: 'xennet', file: '/etc/modprobe.conf', line: 0 },
      { alias: 'scsi_hostadapter', module: 'xenblk', file: '/etc/modprobe.conf', line: 1 },
    ]);
    expect(r.network).toEqual({
      ifcfg: [{ file: '/etc/sysconfig/network-scripts/ifcfg-eth0', device: 'eth0', bootproto: 'dhcp', hwaddr: CENTOS5.hwaddr }],
      interfaces: [],
      persistentNetRules: ['/etc/udev/rules.d/70-persistent-net.rules'],
      ethNames: ['eth0'],
      renamesInterfaces: false,
    });
    expect(r.cloud).toEqual({
      metadataFetches: [{ file: '/etc/rc.local', line: 3, text: 'curl -f http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key > /root/.ssh/authorized_keys' }],
      cloudInit: false,
      cloudInitState: false,
    });
    expect(r.selinux).toEqual({ mode: 'enforcing', type: 'targeted' });
    const g = `/usr/share/grub/${arch === 'x86_64' ? 'x86_64' : 'i386'}-redhat`;
    expect(r.grubStages).toMatchObject({ dir: g, stage1: `${g}/stage1`, stage2: `${g}/stage2`, e2fsStage1_5: `${g}/e2fs_stage1_5` });
    expect(r.warnings).toEqual([]);
  };
  const xenserverChanges = ['fstab: root /dev/sda1 is named for another hypervisor', 'bootloader config: root=/dev/sda1 is named for another hypervisor', 'network: HWADDR pinned in ifcfg', 'network: persistent-net udev rules', 'selinux: relabel on first boot'];

  for (const arch of ['x86_64', 'i386'] as const) {
    it(`${arch}: only a Xen-only kernel, so it boots on xenserver alone`, async (ctx) => {
      const img = await image(ctx, `centos5-${arch}`, () => centos5Guest({ arch }));
      const res = await inspectJson(img);
      expect(res).toMatchObject({ file: img, format: 'raw', partition: null });
      const r = res.report;
      common(r, arch);
      expect(r.kernels).toEqual([xenKernel]);
      expect(r.bootConfigs).toEqual([{ file: '/boot/grub/menu.lst', kind: 'grub-legacy', defaultIndex: 0, timeout: 5, hiddenmenu: true, entries: [xenEntry] }]);
      expect(r.imageId).toBeUndefined();
      const only = (t: string): string => `only Xen-PV-only kernels (${xv}): they cannot boot on ${t}`;
      expect(r.verdicts).toEqual([
        verdict('kvm', 'will-not-boot', { reasons: [only('kvm')] }),
        verdict('virtualbox', 'will-not-boot', { reasons: [only('virtualbox')] }),
        verdict('xenserver', 'boots-after-translation', { kernel: xv, bus: 'xen', changes: xenserverChanges }),
        verdict('eucalyptus', 'will-not-boot', { reasons: [only('eucalyptus')] }),
        verdict('ec2-hvm', 'will-not-boot', { reasons: [`will not boot on HVM: only XenLinux kernels (${xv}), which boot only as Xen PV guests (CONFIG_X86_XEN); a pvops kernel (2.6.32 or later with CONFIG_XEN) is needed`] }),
      ]);
    });
  }

  it('el5 next to el5xen: each kernel gets its own initrd (shortest name), the plain one boots on kvm', async (ctx) => {
    const img = await image(ctx, 'centos5-two-kernels', () => centos5Guest({ plainKernel: true }));
    const r = (await inspectJson(img)).report;
    common(r, 'x86_64');
    const pv = CENTOS5.plainVersion;
    expect(r.kernels).toEqual([
      {
        version: pv,
        vmlinuz: `/boot/vmlinuz-${pv}`,
        modulesDir: `/lib/modules/${pv}`,
        initrd: `/boot/initrd-${pv}.img`,
        config: `/boot/config-${pv}`,
        xenOnly: false,
        drivers: drivers({
          virtio_blk: 'module', virtio_net: 'module', virtio_pci: 'module', ata_piix: 'builtin', ahci: 'module',
          sd_mod: 'builtin', e1000: 'module', ext2: 'builtin', ext3: 'module', jbd: 'module',
        }),
        moduleCount: 9,
        isDefault: false,
        initrdFlavour: 'nash',
        initrdModules: ['ext3', 'jbd', 'virtio', 'virtio_blk', 'virtio_pci', 'virtio_ring'],
        initrdDrivers: ['virtio_blk', 'virtio_pci', 'ext3', 'jbd'],
      },
      xenKernel,
    ]);
    expect(r.bootConfigs).toEqual([{
      file: '/boot/grub/menu.lst', kind: 'grub-legacy', defaultIndex: 0, timeout: 5, hiddenmenu: true,
      entries: [xenEntry, entry({ title: `CentOS (${pv})`, root: '(hd0)', kernel: `/boot/vmlinuz-${pv}`, args: 'ro root=LABEL=/ console=tty0 console=ttyS0,115200', initrd: `/boot/initrd-${pv}.img`, line: 8 })],
    }]);
    expect(r.imageId).toEqual({ image_name: 'euca-centos-emi', image_version: '2012.1.14', image_arch: 'x86_64', recipe_name: 'centos-based' });
    const guest = ['consoles: xvc0 -> ttyS0', 'modules: aliases to xennet, xenblk', 'network: HWADDR pinned in ifcfg', 'network: persistent-net udev rules'];
    const disk = ['build an MBR disk with the filesystem in partition 1 and install GRUB legacy from /usr/share/grub/x86_64-redhat (the guest\'s own GRUB legacy stage files)'];
    const makeDefault = `bootloader config: make ${pv} the default entry`;
    expect(r.verdicts).toEqual([
      verdict('kvm', 'boots-after-translation', { kernel: pv, bus: 'virtio', changes: [...disk, 'fstab: root /dev/sda1 is named for another hypervisor', makeDefault, 'bootloader config: root (hd0,0)', ...guest, 'cloud hooks: rc.local fetches instance metadata', 'selinux: relabel on first boot'] }),
      // IDE: the guest has no modules.dep, so the initrd step cannot add ahci for SATA.
      verdict('virtualbox', 'boots-after-translation', { kernel: pv, bus: 'ide', changes: [...disk, makeDefault, 'bootloader config: root (hd0,0)', ...guest, 'cloud hooks: rc.local fetches instance metadata', 'selinux: relabel on first boot'] }),
      verdict('xenserver', 'boots-after-translation', { kernel: xv, bus: 'xen', changes: xenserverChanges }),
      verdict('eucalyptus', 'boots-after-translation', { kernel: pv, bus: 'virtio', changes: [makeDefault, ...guest, 'selinux: relabel on first boot'] }),
      verdict('ec2-hvm', 'will-not-boot', { reasons: [`runs nowhere on ec2-hvm: Nitro: ${pv} has no NVMe driver (nvme neither built in, in the initrd, nor a module the initrd step can add), no ENA driver (ena neither built in nor in /lib/modules/${pv}) | Xen HVM: ${pv} has no Xen PV disk driver (xen_blkfront neither built in, in the initrd, nor a module the initrd step can add), no Xen PV network driver (xen_netfront neither built in nor in /lib/modules/${pv})`] }),
    ]);
  });
});

describe('Amazon Linux AMI (system-release, LABEL=/, hvc0, dracut initramfs)', () => {
  it('reports the pvops kernel, its dracut initrd and why kvm needs GRUB files', async (ctx) => {
    const img = await image(ctx, 'amazon', amazonLinuxGuest);
    const r = (await inspectJson(img)).report;
    const v = AMAZON.version;
    expect(r.distro).toEqual({ id: 'amzn', name: 'Amazon Linux AMI', version: '2013.09', family: 'amazon', source: '/etc/system-release' });
    expect(r.arch).toBe('x86_64');
    expect(r.layout).toBe('bare-filesystem');
    expect(r.filesystem).toMatchObject({ type: 'ext4', label: '/', uuid: 'b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e', inodeSize: 256 });
    expect(r.kernels).toEqual([{
      version: v,
      vmlinuz: `/boot/vmlinuz-${v}`,
      modulesDir: `/lib/modules/${v}`,
      initrd: `/boot/initramfs-${v}.img`,
      config: `/boot/config-${v}`,
      xenOnly: false,
      drivers: drivers({ virtio_blk: 'module', virtio_net: 'module', virtio_pci: 'module', xen_blkfront: 'builtin', xen_netfront: 'builtin', sd_mod: 'builtin', ext4: 'builtin', jbd2: 'builtin' }),
      moduleCount: 6,
      isDefault: true,
      initrdFlavour: 'dracut',
      initrdModules: ['virtio', 'virtio_blk', 'virtio_pci', 'virtio_ring', 'xen_blkfront'],
      initrdDrivers: ['virtio_blk', 'virtio_pci', 'xen_blkfront'],
    }]);
    expect(r.modulesWithoutKernel).toEqual([]);
    expect(r.bootConfigs).toEqual([{
      file: '/boot/grub/menu.lst', kind: 'grub-legacy', defaultIndex: 0, timeout: 1, hiddenmenu: true,
      entries: [entry({ title: `Amazon Linux 2013.09 (${v})`, root: '(hd0)', kernel: `/boot/vmlinuz-${v}`, args: 'root=LABEL=/ console=hvc0 LANG=en_US.UTF-8 KEYTABLE=us', initrd: `/boot/initramfs-${v}.img`, line: 5 })],
    }]);
    expect(r.pvgrub).toEqual({ hd0: true, hd00: false });
    expect(r.fstab).toEqual([
      { spec: 'LABEL=/', kind: 'label', mountpoint: '/', type: 'ext4', options: ['defaults', 'noatime'], freq: 1, passno: 1, line: 0 },
      { spec: 'tmpfs', kind: 'other', mountpoint: '/dev/shm', type: 'tmpfs', options: ['defaults'], freq: 0, passno: 0, line: 1 },
      { spec: 'proc', kind: 'other', mountpoint: '/proc', type: 'proc', options: ['defaults'], freq: 0, passno: 0, line: 2 },
    ]);
    expect(r.consoles).toEqual([
      ...['console', 'tty1', 'hvc0'].map((device, line) => ({ device, source: 'securetty', file: '/etc/securetty', line })),
      { device: 'hvc0', source: 'upstart', file: '/etc/init/hvc0.conf' },
    ]);
    expect(r.modprobe).toEqual([{ alias: 'eth0', module: 'xen_netfront', file: '/etc/modprobe.d/ec2.conf', line: 0 }]);
    expect(r.network).toEqual({ ifcfg: [{ file: '/etc/sysconfig/network-scripts/ifcfg-eth0', device: 'eth0', bootproto: 'dhcp' }], interfaces: [], persistentNetRules: [], ethNames: ['eth0'], renamesInterfaces: false });
    expect(r.cloud).toEqual({ metadataFetches: [], cloudInit: true, cloudInitState: true });
    expect(r.selinux).toEqual({ mode: 'disabled', type: 'targeted' });
    expect(r.imageId).toBeUndefined();
    expect(r.grubStages).toBeUndefined();
    expect(r.warnings).toEqual([]);
    expect(r.verdicts).toEqual([
      // No GRUB in the image: this host's GRUB 2 (grub-pc-bin, installed by setup-test-env.sh).
      verdict('kvm', 'boots-after-translation', { kernel: v, bus: 'virtio', changes: [
        'build an MBR disk with the filesystem in partition 1 and install GRUB 2 from /usr/lib/grub/i386-pc (the image has no GRUB legacy stage files, nor GRUB 2 i386-pc files: this host\'s GRUB 2)',
        'bootloader config: console=ttyS0', 'bootloader config: root (hd0,0)', 'consoles: hvc0 -> ttyS0', 'modules: aliases to xen_netfront'] }),
      verdict('virtualbox', 'will-not-boot', { reasons: [`no kernel has the virtualbox disk driver before root is mounted: ${v} lacks (neither built in nor in its initrd) sata: ahci; ide: ata_piix`] }),
      verdict('xenserver', 'boots', { kernel: v, bus: 'xen' }),
      verdict('eucalyptus', 'boots-after-translation', { kernel: v, bus: 'virtio', changes: ['bootloader config: console=ttyS0', 'consoles: hvc0 -> ttyS0', 'modules: aliases to xen_netfront', 'eucalyptus: /etc/image-id and the euca-udev rule'] }),
      // No nvme in a 3.4 kernel: the older Xen HVM types only.
      verdict('ec2-hvm', 'boots-after-translation', {
        kernel: v, bus: 'xen', platforms: ['Xen HVM'],
        reasons: [`Xen HVM only: no NVMe driver (nvme neither built in, in the initrd, nor a module the initrd step can add), no ENA driver (ena neither built in nor in /lib/modules/${v})`],
        changes: [
          'build an MBR disk with the filesystem in partition 1 and install GRUB 2 from /usr/lib/grub/i386-pc (the image has no GRUB legacy stage files, nor GRUB 2 i386-pc files: this host\'s GRUB 2)',
          'bootloader config: console=ttyS0', 'bootloader config: root (hd0,0)', 'consoles: hvc0 -> ttyS0', 'modules: aliases to xen_netfront'],
      }),
    ]);
    // Without a GRUB on the host either: what to install, or what to pass.
    expect(verdictFor(r, 'kvm')).toEqual(verdict('kvm', 'will-not-boot', { kernel: v, bus: 'virtio', reasons: [NO_BOOTLOADER] }));
  });
});

describe('Ubuntu 12.04 in partition 1 (menu.lst root (hd0,0), LABEL=cloudimg-rootfs)', () => {
  const v = UBUNTU1204.version;
  const expectUbuntu = (res: ImageInspection): void => {
    expect(res.partition).toBe(1);
    const r = res.report;
    expect(r.distro).toEqual({ id: 'ubuntu', name: 'Ubuntu', version: '12.04', family: 'debian', source: '/etc/lsb-release' });
    expect(r.arch).toBe('x86_64');
    expect(r.layout).toBe('partitioned');
    expect(r.filesystem).toMatchObject({ type: 'ext4', label: 'cloudimg-rootfs', uuid: 'c2d3e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e6f', inodeSize: 256 });
    expect(r.kernels).toEqual([{
      version: v,
      vmlinuz: `/boot/vmlinuz-${v}`,
      modulesDir: `/lib/modules/${v}`,
      initrd: `/boot/initrd.img-${v}`,
      config: `/boot/config-${v}`,
      xenOnly: false,
      drivers: drivers({ ata_piix: 'module', ahci: 'module', e1000: 'module', virtio_scsi: 'absent', nvme: 'absent', ena: 'absent' }, 'builtin'),
      moduleCount: 4,
      isDefault: true,
      initrdFlavour: 'initramfs-tools',
      initrdModules: ['ahci', 'ata_piix', 'libahci'],
      initrdDrivers: ['ata_piix', 'ahci'],
    }]);
    const common = { root: '(hd0,0)', kernel: `/boot/vmlinuz-${v}`, initrd: `/boot/initrd.img-${v}` };
    expect(r.bootConfigs).toEqual([{
      file: '/boot/grub/menu.lst', kind: 'grub-legacy', defaultIndex: 0, timeout: 0, hiddenmenu: false,
      entries: [
        entry({ title: `Ubuntu 12.04.5 LTS, kernel ${v}`, ...common, args: 'root=LABEL=cloudimg-rootfs ro console=hvc0', line: 7 }),
        entry({ title: `Ubuntu 12.04.5 LTS, kernel ${v} (recovery mode)`, ...common, args: 'root=LABEL=cloudimg-rootfs ro single', line: 12 }),
      ],
    }]);
    expect(r.pvgrub).toEqual({ hd0: false, hd00: true });
    expect(r.fstab).toEqual([{ spec: 'LABEL=cloudimg-rootfs', kind: 'label', mountpoint: '/', type: 'ext4', options: ['defaults'], freq: 0, passno: 0, line: 0 }]);
    expect(r.consoles).toEqual([
      { device: 'hvc0', source: 'upstart', file: '/etc/init/hvc0.conf' },
      { device: 'tty1', source: 'upstart', file: '/etc/init/tty1.conf' },
    ]);
    expect(r.modprobe).toEqual([]);
    expect(r.network).toEqual({ ifcfg: [], interfaces: ['lo inet loopback', 'eth0 inet dhcp'], persistentNetRules: ['/etc/udev/rules.d/75-persistent-net-generator.rules'], ethNames: ['eth0'], renamesInterfaces: false });
    expect(r.cloud).toEqual({ metadataFetches: [], cloudInit: true, cloudInitState: false });
    expect(r.selinux).toEqual({ mode: 'absent' });
    expect(r.grubStages).toMatchObject({ dir: '/boot/grub', stage1: '/boot/grub/stage1', stage2: '/boot/grub/stage2', e2fsStage1_5: '/boot/grub/e2fs_stage1_5' });
    expect(r.warnings).toEqual([]);
    const guest = ['bootloader config: console=ttyS0', 'consoles: hvc0 -> ttyS0', 'network: persistent-net udev rules'];
    const MBR_GRUB = 'bootloader: GRUB legacy into the MBR for partition 1 (sector 0 has no boot code: pv-grub hd00 layout)';
    expect(r.verdicts).toEqual([
      // Sector 0 has no boot code (hd00): a disk target gets GRUB in the MBR too.
      verdict('kvm', 'boots-after-translation', { kernel: v, bus: 'virtio', changes: [...guest, MBR_GRUB] }),
      verdict('virtualbox', 'boots-after-translation', { kernel: v, bus: 'sata', changes: [...guest, MBR_GRUB] }),
      verdict('xenserver', 'boots-after-translation', { kernel: v, bus: 'xen', changes: ['network: persistent-net udev rules'] }),
      verdict('eucalyptus', 'boots-after-translation', { kernel: v, bus: 'virtio', changes: [...guest, 'eucalyptus: /etc/image-id and the euca-udev rule'] }),
      // linux-virtual 3.2 has no nvme (AWS names Ubuntu 14.04's linux-aws as the first that does).
      verdict('ec2-hvm', 'boots-after-translation', {
        kernel: v, bus: 'xen', platforms: ['Xen HVM'], changes: [...guest, MBR_GRUB],
        reasons: [`Xen HVM only: no NVMe driver (nvme neither built in, in the initrd, nor a module the initrd step can add), no ENA driver (ena neither built in nor in /lib/modules/${v})`],
      }),
    ]);
  };

  it('finds the root in partition 1 by itself', async (ctx) => {
    const img = await image(ctx, 'ubuntu-partitioned', () => ubuntu1204Guest({ partitioned: true }));
    // The oracle agrees on where the filesystem is.
    const table = JSON.parse((await run('sfdisk', ['--json', img])).stdout) as { partitiontable: { partitions: { start: number; type: string }[] } };
    expect(table.partitiontable.partitions).toMatchObject([{ start: 2048, type: '83' }]);
    expectUbuntu(await inspectJson(img));
  });

  it('--partition 1 gives the same report; a partition that does not exist is an error', async (ctx) => {
    const img = await image(ctx, 'ubuntu-partitioned', () => ubuntu1204Guest({ partitioned: true }));
    expectUbuntu(await inspectJson(img, '--partition', '1'));
    const bad = await cli('inspect', img, '--partition', '2', '--json');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/partition 2 does not exist or holds no ext2\/3\/4 filesystem/);
  });
});

describe('an AMI that booted an Amazon AKI (modules, no kernel in /boot)', () => {
  it('lists the module versions and will not boot anywhere', async (ctx) => {
    const img = await image(ctx, 'aki', amazonAkiGuest);
    const r = (await inspectJson(img)).report;
    expect(r.distro).toEqual({ id: 'fedora', name: 'Fedora', version: '8', family: 'redhat', source: '/etc/redhat-release' });
    expect(r.arch).toBe('i386');
    expect(r.kernels).toEqual([]);
    expect(r.modulesWithoutKernel).toEqual([AKI.version]);
    expect(r.bootConfigs).toEqual([]);
    expect(r.pvgrub).toEqual({ hd0: false, hd00: false });
    expect(r.fstab.map((e) => [e.spec, e.mountpoint, e.type])).toEqual([['/dev/sda1', '/', 'ext3'], ['/dev/sda2', '/mnt', 'ext3'], ['/dev/sda3', 'swap', 'swap']]);
    expect(r.consoles).toEqual([{ device: 'tty1', source: 'inittab', file: '/etc/inittab', line: 1 }]);
    expect(r.cloud).toEqual(NO_CLOUD);
    expect(r.selinux).toEqual({ mode: 'absent' });
    expect(r.grubStages).toBeUndefined();
    expect(r.warnings).toEqual([]);
    const reason = `no kernel in /boot: the image relied on an external kernel (modules only for ${AKI.version})`;
    expect(r.verdicts).toEqual((['kvm', 'virtualbox', 'xenserver', 'eucalyptus', 'ec2-hvm'] as const).map((t) => verdict(t, 'will-not-boot', { reasons: [reason] })));
  });

  it('the human report says the kernel was external', async (ctx) => {
    const img = await image(ctx, 'aki', amazonAkiGuest);
    const r = await cli('inspect', img);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(`${img}: Fedora 8 (fedora, i386) on a bare ext3 filesystem`);
    expect(r.stdout).toContain(`kernels: none in /boot (modules for ${AKI.version}: it used an external kernel)`);
  });
});

describe('a PV AMI from real Debian packages (linux-image-cloud-amd64, busybox initrd)', () => {
  const UUID = '3d1e5c2a-7b4f-4a8e-9c6d-5f0e1a2b3c4d';

  it('reports the real kernel, its modules, config and initrd as built', async (ctx) => {
    requireTools(ctx, 'mkfs.ext3', 'depmod', 'cpio', 'debugfs', 'dumpe2fs');
    const kroot = debRoot(ctx, 'linux-image-cloud-amd64');
    const [kver] = await readdir(join(kroot, 'lib/modules'));
    const img = dir.file('debian-ami.img');
    await buildDebianAmi(ctx, img);

    // Oracles: the package's own files, dumpe2fs, and the initrd listed by cpio -t.
    const koFiles = (await run('find', [join(kroot, 'lib/modules', kver!), '-name', '*.ko*'])).stdout.trim().split('\n');
    const config = readFileSync(join(kroot, 'boot', `config-${kver}`), 'utf8');
    const dump = (await run('dumpe2fs', ['-h', img])).stdout;
    const initrdCopy = dir.file('debian-initrd.gz');
    await run('debugfs', ['-R', `dump /boot/initrd.img-${kver} ${initrdCopy}`, img]);
    const members = (await run('sh', ['-c', `gzip -dc "${initrdCopy}" | cpio -t --quiet`])).stdout.split('\n');
    const initrdModules = [...new Set(members.filter((m) => /\.ko(\.[a-z]+)?$/.test(m)).map((m) => m.split('/').pop()!.replace(/\.ko.*$/, '').replace(/-/g, '_')))].sort();
    expect(initrdModules).toContain('virtio_blk');

    const res = await inspectJson(img);
    const r = res.report;
    expect(res).toMatchObject({ format: 'raw', partition: null });
    expect(r.distro).toEqual({ id: 'debian', name: 'Debian GNU/Linux', version: '12', family: 'debian', source: '/etc/os-release' });
    expect(r.arch).toBe('x86_64');
    expect(dump).toMatch(new RegExp(`Filesystem UUID:\\s+${UUID}`));
    expect(dump).toMatch(/Inode size:\s+128/);
    expect(dump).toMatch(/Filesystem volume name:\s+debian-root/);
    expect(r.filesystem).toMatchObject({ type: 'ext3', label: 'debian-root', uuid: UUID, inodeSize: 128 });

    // Each driver as the real config says: =y built in, =m a module, unset absent
    // (ext4 and jbd2 are built in; Debian drops CONFIG_EXT3_FS, ext4 mounts ext3).
    const opt = (name: string): string | undefined => new RegExp(`^CONFIG_${name}=(.)$`, 'm').exec(config)?.[1];
    expect([opt('VIRTIO_BLK'), opt('VIRTIO_PCI'), opt('XEN_BLKDEV_FRONTEND'), opt('ATA_PIIX'), opt('SATA_AHCI'), opt('EXT4_FS'), opt('EXT3_FS')]).toEqual(['m', 'm', 'm', 'm', undefined, 'y', undefined]);
    expect(r.kernels).toEqual([{
      version: kver,
      vmlinuz: `/boot/vmlinuz-${kver}`,
      modulesDir: `/lib/modules/${kver}`,
      initrd: `/boot/initrd.img-${kver}`,
      config: `/boot/config-${kver}`,
      xenOnly: false,
      drivers: drivers({
        virtio_blk: 'module', virtio_net: 'module', virtio_pci: 'module', virtio_scsi: 'module', xen_blkfront: 'module', xen_netfront: 'module',
        ata_piix: 'module', sd_mod: 'module', ext4: 'builtin', jbd2: 'builtin', nvme: 'builtin', ena: 'module',
      }),
      moduleCount: koFiles.length,
      moduleFiles: ['virtio_blk', 'virtio_net', 'virtio_pci', 'virtio_scsi', 'xen_blkfront', 'xen_netfront', 'ata_piix', 'sd_mod', 'ena'],
      isDefault: true,
      initrdFlavour: 'busybox',
      initrdModules,
      initrdDrivers: ['virtio_blk', 'virtio_pci', 'virtio_scsi', 'xen_blkfront', 'ata_piix', 'sd_mod'],
    }]);
    expect(r.bootConfigs).toEqual([{
      file: '/boot/grub/menu.lst', kind: 'grub-legacy', defaultIndex: 0, timeout: 1, hiddenmenu: false,
      entries: [entry({ title: `Debian GNU/Linux, kernel ${kver}`, root: '(hd0)', kernel: `/boot/vmlinuz-${kver}`, args: 'root=/dev/xvda1 ro console=hvc0', initrd: `/boot/initrd.img-${kver}`, line: 2 })],
    }]);
    expect(r.pvgrub).toEqual({ hd0: true, hd00: false });
    expect(r.fstab.map((e) => e.spec)).toEqual(['/dev/xvda1', '/dev/xvdb', 'proc']);
    expect(r.consoles.map((c) => `${c.device}/${c.source}`)).toEqual(['tty1/inittab', 'hvc0/inittab', 'console/securetty', 'tty1/securetty', 'hvc0/securetty']);
    expect(r.modprobe.map((a) => `${a.alias}=${a.module}`)).toEqual(['scsi_hostadapter=xenblk', 'eth0=xennet']);
    expect(r.network).toEqual({ ifcfg: [], interfaces: ['lo inet loopback', 'eth0 inet dhcp'], persistentNetRules: ['/etc/udev/rules.d/70-persistent-net.rules'], ethNames: ['eth0'], renamesInterfaces: false });
    expect(r.cloud.metadataFetches).toHaveLength(1);
    expect(r.grubStages).toMatchObject({ dir: '/boot/grub', stage1: '/boot/grub/stage1', stage2: '/boot/grub/stage2', e2fsStage1_5: '/boot/grub/e2fs_stage1_5' });
    expect(r.warnings).toEqual([]);
    const xvda = ['fstab: root /dev/xvda1 is named for another hypervisor', 'bootloader config: root=/dev/xvda1 is named for another hypervisor'];
    const guest = ['consoles: hvc0 -> ttyS0', 'modules: aliases to xenblk, xennet', 'network: persistent-net udev rules'];
    const disk = ['build an MBR disk with the filesystem in partition 1 and install GRUB legacy from /boot/grub (the guest\'s own GRUB legacy stage files)', ...xvda, 'bootloader config: console=ttyS0', 'bootloader config: root (hd0,0)', ...guest, 'cloud hooks: rc.local fetches instance metadata'];
    expect(r.verdicts).toEqual([
      verdict('kvm', 'boots-after-translation', { kernel: kver, bus: 'virtio', changes: disk }),
      verdict('virtualbox', 'boots-after-translation', { kernel: kver, bus: 'ide', changes: disk }),
      // A bare filesystem is the whole xvda on XenServer: xvda1 does not exist there.
      verdict('xenserver', 'boots-after-translation', { kernel: kver, bus: 'xen', changes: [...xvda, 'network: persistent-net udev rules'] }),
      verdict('eucalyptus', 'boots-after-translation', { kernel: kver, bus: 'virtio', changes: [...xvda, 'bootloader config: console=ttyS0', ...guest, 'eucalyptus: /etc/image-id and the euca-udev rule'] }),
      // nvme built in, ena a module: Nitro; xen-blkfront in the initrd: Xen HVM too. EC2 keeps the metadata service.
      verdict('ec2-hvm', 'boots-after-translation', {
        kernel: kver, bus: 'nvme', platforms: ['Nitro', 'Xen HVM'],
        changes: [
          disk[0]!,
          ...['fstab: root', 'bootloader config: root='].map((what) => `${what}${what.endsWith('=') ? '' : ' '}/dev/xvda1 is a device name: NVMe device names are not stable (nvme0n1 may be another volume); name the filesystem by UUID`),
          'bootloader config: console=ttyS0', 'bootloader config: root (hd0,0)', 'bootloader config: nvme_core.io_timeout=4294967295', ...guest,
        ],
      }),
    ]);
  }, 120_000);
});
