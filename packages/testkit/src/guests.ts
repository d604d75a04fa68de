/**
 * Synthetic guest filesystems for inspection tests: a small declarative description (files,
 * modes, symlinks, sparse files, kernels with configs and module trees, initrds packed by
 * cpio(1)) written out as a directory tree, then made into an ext image by `mkfs.ext* -d`,
 * bare or inside an sfdisk-made partition. Also the distribution layouts the tests use
 * (CentOS 5, Amazon Linux, Ubuntu 12.04, an Amazon-AKI image), each with the facts it was
 * built with, so a test can compare a report field by field.
 */
import { chmod, cp, mkdir, open, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BaseDevice, type BlockDevice, type Extent, type Range } from '@amitrans/block';
import { run } from './index.js';

/** A cpio archive (newc, by `cpio -o -H newc -R 0:0`), gzip-compressed unless `gzip` is false. */
export interface CpioNode {
  cpio: GuestTree;
  gzip?: boolean;
  /** Keep only the first `cut` bytes of the packed file (a truncated initrd). */
  cut?: number;
}

/**
 * One entry of a tree: file contents, a file with a mode, a symlink, a directory, a sparse
 * file (a hole of `sparse` bytes after `head`), a copy of a host file or directory, or an
 * initrd archive. Member names of a cpio tree may start with "../" (they are packed as given).
 */
export type GuestNode =
  | string
  | Uint8Array
  | { data: string | Uint8Array; mode: number }
  | { link: string }
  | { dir: true; mode?: number }
  | { sparse: number; head?: string | Uint8Array }
  | { copy: string }
  | CpioNode;

export type GuestTree = Record<string, GuestNode>;

export interface KernelSpec {
  version: string;
  /** False for modules only (an image that booted an external Amazon AKI). Default true. */
  inBoot?: boolean;
  /** /boot/config-<version> text (see kernelConfig). */
  config?: string;
  /** Module files, relative to /lib/modules/<version> (kernel/drivers/xen/blkfront/xenblk.ko). */
  modules?: string[];
  /** /lib/modules/<version>/modules.builtin lines. */
  builtin?: string[];
  /** The initrd: its file name in /boot and its archive. */
  initrd?: { name: string } & CpioNode;
}

export interface GuestSpec {
  /** A fake ELF header at /sbin/init for this machine. */
  arch?: 'x86_64' | 'i386';
  kernels?: KernelSpec[];
  files?: GuestTree;
}

export interface ExtImageOptions {
  type?: 'ext2' | 'ext3' | 'ext4';
  /** mkfs -I (128 for CentOS 5: the 2.6.18 kernels and GRUB 0.97 need it). */
  inodeSize?: number;
  label?: string;
  uuid?: string;
  /** mkfs size argument (default 64M). */
  size?: string;
  /** Put the filesystem into partition 1 (sfdisk, start sector 2048) of an MBR disk. */
  partitioned?: boolean;
}

/** The first bytes of an ELF executable for the machine (enough for e_machine checks). */
export function elfHeader(arch: 'x86_64' | 'i386'): Uint8Array {
  const b = new Uint8Array(256);
  b.set([0x7f, 0x45, 0x4c, 0x46, arch === 'x86_64' ? 2 : 1, 1, 1, 0]);
  b[16] = 2; // ET_EXEC
  b[18] = arch === 'x86_64' ? 0x3e : 0x03;
  b[20] = 1; // EV_CURRENT
  return b;
}

/** Kernel .config text: 'y' and 'm' become CONFIG_X=y|m, 'n' the "is not set" comment. */
export function kernelConfig(options: Record<string, 'y' | 'm' | 'n' | string>): string {
  const lines = ['#', '# Automatically generated file; DO NOT EDIT.', '#'];
  for (const [k, v] of Object.entries(options)) lines.push(v === 'n' ? `# CONFIG_${k} is not set` : `CONFIG_${k}=${v}`);
  return `${lines.join('\n')}\n`;
}

/** A RHEL 5 mkinitrd /init (a nash script) that insmods `modules` from /lib. */
export function nashInit(modules: string[], root = '/dev/sda1'): string {
  return [
    '#!/bin/nash',
    'mount -t proc /proc /proc',
    'setquiet',
    'echo Mounting proc filesystem',
    'echo Mounting sysfs filesystem',
    'mount -t sysfs /sys /sys',
    'echo Creating /dev',
    'mount -o mode=0755 -t tmpfs /dev /dev',
    ...modules.flatMap((m) => [`echo "Loading ${m}.ko module"`, `insmod /lib/${m}.ko`]),
    'echo Creating root device.',
    `mkrootdev -t ext3 -o defaults,ro ${root}`,
    'echo Mounting root filesystem.',
    'mount /sysroot',
    'echo Switching to new root and running init.',
    'switchroot',
    '',
  ].join('\n');
}

const FAKE_KERNEL = Buffer.concat([Buffer.alloc(0x202), Buffer.from('HdrS'), Buffer.alloc(4096 - 0x206, 0x90)]);

/** Stand-in contents of a module file: an ELF relocatable header for the machine. */
function fakeModule(arch: 'x86_64' | 'i386'): Uint8Array {
  const b = elfHeader(arch);
  b[16] = 1; // ET_REL
  return b;
}

/** Write one node at `full` (parents made); cpio nodes are packed in `work`. */
async function writeNode(full: string, node: GuestNode, work: string): Promise<void> {
  await mkdir(dirname(full), { recursive: true });
  if (typeof node === 'string' || node instanceof Uint8Array) {
    await writeFile(full, node);
  } else if ('data' in node) {
    await writeFile(full, node.data);
    await chmod(full, node.mode);
  } else if ('link' in node) {
    await rm(full, { force: true });
    await symlink(node.link, full);
  } else if ('dir' in node) {
    await mkdir(full, { recursive: true });
    if (node.mode !== undefined) await chmod(full, node.mode);
  } else if ('sparse' in node) {
    const fh = await open(full, 'w');
    try {
      if (node.head !== undefined) await fh.write(typeof node.head === 'string' ? Buffer.from(node.head) : node.head, 0, undefined, 0);
      await fh.truncate(node.sparse);
    } finally {
      await fh.close();
    }
  } else if ('copy' in node) {
    await cp(node.copy, full, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  } else {
    await writeFile(full, await packCpio(node, work));
  }
}

let packed = 0;

/** Pack a cpio node with the real tools: `cpio -o -H newc -R 0:0`, then `gzip -9n`. */
export async function packCpio(node: CpioNode, work: string): Promise<Buffer> {
  // Nested four deep so members named "../x" still land inside the work directory.
  const base = join(work, `cpio-${++packed}`);
  const root = join(base, 'a', 'b', 'c', 'root');
  await mkdir(root, { recursive: true });
  const names = new Set<string>();
  for (const [path, child] of Object.entries(node.cpio)) {
    const rel = path.replace(/^\/+/, '');
    await writeNode(join(root, rel), child, work);
    // Parent directories are members too, as `find` lists them (not above the root).
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!dir.split('/').includes('..')) names.add(dir);
    }
    names.add(rel);
  }
  const list = ['.', ...[...names].sort()].join('\n') + '\n';
  const out = join(base, 'initrd');
  const gzip = node.gzip ?? true;
  await run('sh', ['-c', `cd "${root}" && cpio -o -H newc --quiet -R 0:0 ${gzip ? '| gzip -9n' : ''} > "${out}"`], { input: list });
  const bytes = await readFile(out);
  await rm(base, { recursive: true, force: true });
  return node.cut !== undefined ? bytes.subarray(0, node.cut) : bytes;
}

/** The whole tree of a spec, paths absolute: kernels expanded into /boot and /lib/modules. */
export function guestTree(spec: GuestSpec): GuestTree {
  const arch = spec.arch ?? 'x86_64';
  const tree: GuestTree = {
    '/bin': { dir: true },
    '/dev': { dir: true },
    '/proc': { dir: true },
    '/sys': { dir: true },
    '/tmp': { dir: true, mode: 0o1777 },
  };
  if (spec.arch) tree['/sbin/init'] = { data: elfHeader(spec.arch), mode: 0o755 };
  for (const k of spec.kernels ?? []) {
    const mods = `/lib/modules/${k.version}`;
    if (k.inBoot !== false) tree[`/boot/vmlinuz-${k.version}`] = { data: FAKE_KERNEL, mode: 0o644 };
    if (k.config !== undefined) tree[`/boot/config-${k.version}`] = k.config;
    if (k.modules || k.builtin) tree[mods] = { dir: true };
    for (const m of k.modules ?? []) tree[`${mods}/${m}`] = fakeModule(arch);
    if (k.builtin) tree[`${mods}/modules.builtin`] = k.builtin.map((l) => `${l}\n`).join('');
    if (k.initrd) {
      const { name, ...cpio } = k.initrd;
      tree[`/boot/${name}`] = cpio;
    }
  }
  Object.assign(tree, spec.files ?? {});
  return tree;
}

/** Write a spec's tree under `root` (which is created). */
export async function writeGuestTree(root: string, spec: GuestSpec, work: string): Promise<void> {
  await mkdir(root, { recursive: true });
  const tree = guestTree(spec);
  // Directories first, so a file's explicit mode is not undone by a later mkdir.
  const entries = Object.entries(tree).sort(([a, x], [b, y]) => Number(isDirNode(y)) - Number(isDirNode(x)) || a.localeCompare(b));
  for (const [path, node] of entries) await writeNode(join(root, path), node, work);
}

function isDirNode(n: GuestNode): boolean {
  return typeof n === 'object' && !(n instanceof Uint8Array) && 'dir' in n;
}

/**
 * Build an ext image of a spec at `out`: the tree is written in a scratch directory next to
 * `out`, then `mkfs.<type> -d` (root-owned files) makes the filesystem; with `partitioned`
 * the filesystem goes into partition 1 (start 1 MiB, type 83) of an sfdisk-made MBR disk.
 */
export async function buildGuestImage(spec: GuestSpec, out: string, o: ExtImageOptions = {}): Promise<void> {
  const work = `${out}.work`;
  await rm(work, { recursive: true, force: true });
  try {
    const root = join(work, 'root');
    await writeGuestTree(root, spec, work);
    const fsImage = o.partitioned ? join(work, 'fs.img') : out;
    const args = ['-q', '-F', '-E', 'root_owner=0:0', '-d', root];
    if (o.inodeSize) args.push('-I', String(o.inodeSize));
    if (o.label !== undefined) args.push('-L', o.label);
    if (o.uuid) args.push('-U', o.uuid);
    await rm(fsImage, { force: true });
    await run(`mkfs.${o.type ?? 'ext3'}`, [...args, fsImage, o.size ?? '64M']);
    if (o.partitioned) {
      const fsSize = (await stat(fsImage)).size;
      const sectors = Math.ceil(fsSize / 512);
      await rm(out, { force: true });
      await run('truncate', ['-s', String((2048 + sectors) * 512), out]);
      await run('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', out], { input: `label: dos\nstart=2048, size=${sectors}, type=83, bootable\n` });
      await run('dd', [`if=${fsImage}`, `of=${out}`, 'bs=1M', 'seek=1', 'conv=notrunc,sparse', 'status=none']);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A read-only pass-through device that counts the bytes read from it (inspection budgets). */
export class CountingDevice extends BaseDevice {
  bytes = 0;
  reads = 0;
  readonly base: BlockDevice;

  constructor(base: BlockDevice) {
    super(base.size, false, 'counted device');
    this.base = base;
  }

  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    this.bytes += buffer.length;
    this.reads++;
    await this.base.read(buffer, position);
  }

  protected override _extents(range: Range): AsyncIterable<Extent> {
    return this.base.extents(range);
  }
}

// ---------------------------------------------------------------------------------------
// Distribution layouts. Each returns the spec and the facts the tests compare against.

export interface GuestFixture {
  spec: GuestSpec;
  image: ExtImageOptions;
}

const XEN_TYPE_ID = '12:31:39:0A:2B:3C';

/** CentOS 5 kernels: `el5xen` (XenLinux, Xen PV only) and the plain `el5` (virtio modules). */
export const CENTOS5 = {
  release: 'CentOS release 5.11 (Final)',
  xenVersion: '2.6.18-398.el5xen',
  plainVersion: '2.6.18-398.el5',
  hwaddr: XEN_TYPE_ID,
  xenInitrdModules: ['xenblk', 'ehci-hcd', 'ohci-hcd', 'uhci-hcd', 'jbd', 'ext3'],
  plainInitrdModules: ['virtio', 'virtio_ring', 'virtio_pci', 'virtio_blk', 'jbd', 'ext3'],
} as const;

function centos5XenKernel(arch: 'x86_64' | 'i386'): KernelSpec {
  const v = CENTOS5.xenVersion;
  return {
    version: v,
    config: kernelConfig({
      [arch === 'x86_64' ? 'X86_64_XEN' : 'X86_XEN']: 'y',
      XEN: 'y',
      XEN_BLKDEV_FRONTEND: 'm',
      XEN_NETDEV_FRONTEND: 'm',
      EXT3_FS: 'm',
      JBD: 'm',
      EXT2_FS: 'y',
      BLK_DEV_SD: 'm',
      ATA_PIIX: 'n',
      VIRTIO_BLK: 'n',
    }),
    modules: [
      'kernel/drivers/xen/blkfront/xenblk.ko',
      'kernel/drivers/xen/netfront/xennet.ko',
      'kernel/fs/ext3/ext3.ko',
      'kernel/fs/jbd/jbd.ko',
      'kernel/drivers/scsi/sd_mod.ko',
      'kernel/drivers/usb/host/ehci-hcd.ko',
      'kernel/drivers/usb/host/ohci-hcd.ko',
      'kernel/drivers/usb/host/uhci-hcd.ko',
    ],
    initrd: {
      name: `initrd-${v}.img`,
      cpio: {
        '/init': { data: nashInit([...CENTOS5.xenInitrdModules]), mode: 0o755 },
        '/bin/nash': { data: elfHeader(arch), mode: 0o755 },
        '/bin/insmod': { link: 'nash' },
        ...Object.fromEntries(CENTOS5.xenInitrdModules.map((m) => [`/lib/${m}.ko`, fakeModule(arch)])),
        '/sysroot': { dir: true },
      },
    },
  };
}

function centos5PlainKernel(): KernelSpec {
  const v = CENTOS5.plainVersion;
  return {
    version: v,
    config: kernelConfig({
      X86_64: 'y',
      VIRTIO: 'm',
      VIRTIO_RING: 'm',
      VIRTIO_PCI: 'm',
      VIRTIO_BLK: 'm',
      VIRTIO_NET: 'm',
      XEN_BLKDEV_FRONTEND: 'n',
      ATA_PIIX: 'y',
      SATA_AHCI: 'm',
      BLK_DEV_SD: 'y',
      E1000: 'm',
      EXT3_FS: 'm',
      JBD: 'm',
      EXT2_FS: 'y',
    }),
    modules: [
      'kernel/drivers/virtio/virtio.ko',
      'kernel/drivers/virtio/virtio_ring.ko',
      'kernel/drivers/virtio/virtio_pci.ko',
      'kernel/drivers/block/virtio_blk.ko',
      'kernel/drivers/net/virtio_net.ko',
      'kernel/drivers/ata/ahci.ko',
      'kernel/drivers/net/e1000/e1000.ko',
      'kernel/fs/ext3/ext3.ko',
      'kernel/fs/jbd/jbd.ko',
    ],
    initrd: {
      name: `initrd-${v}.img`,
      cpio: {
        '/init': { data: nashInit([...CENTOS5.plainInitrdModules], 'LABEL=/'), mode: 0o755 },
        '/bin/nash': { data: elfHeader('x86_64'), mode: 0o755 },
        ...Object.fromEntries(CENTOS5.plainInitrdModules.map((m) => [`/lib/${m}.ko`, fakeModule('x86_64')])),
      },
    },
  };
}

function centos5Files(o: { xenOnly: boolean; arch: 'x86_64' | 'i386' }): GuestTree {
  const grubArch = o.arch === 'x86_64' ? 'x86_64-redhat' : 'i386-redhat';
  const entries = [
    `title CentOS (${CENTOS5.xenVersion})`,
    '\troot (hd0)',
    `\tkernel /boot/vmlinuz-${CENTOS5.xenVersion} ro root=/dev/sda1 console=xvc0`,
    `\tinitrd /boot/initrd-${CENTOS5.xenVersion}.img`,
  ];
  if (!o.xenOnly) {
    entries.push(
      `title CentOS (${CENTOS5.plainVersion})`,
      '\troot (hd0)',
      `\tkernel /boot/vmlinuz-${CENTOS5.plainVersion} ro root=LABEL=/ console=tty0 console=ttyS0,115200`,
      `\tinitrd /boot/initrd-${CENTOS5.plainVersion}.img`,
    );
  }
  const files: GuestTree = {
    '/etc/redhat-release': `${CENTOS5.release}\n`,
    '/etc/fstab': [
      '/dev/sda1               /                       ext3    defaults        1 1',
      '/dev/sda2               /mnt                    ext3    defaults        0 0',
      '/dev/sda3               swap                    swap    defaults        0 0',
      'none                    /proc                   proc    defaults        0 0',
      '',
    ].join('\n'),
    '/boot/grub/grub.conf': ['# grub.conf generated by anaconda', 'default=0', 'timeout=5', 'hiddenmenu', ...entries, ''].join('\n'),
    '/boot/grub/menu.lst': { link: 'grub.conf' },
    '/etc/grub.conf': { link: '../boot/grub/grub.conf' },
    '/etc/inittab': [
      'id:3:initdefault:',
      'si::sysinit:/etc/rc.d/rc.sysinit',
      'l3:3:wait:/etc/rc.d/rc 3',
      '1:2345:respawn:/sbin/mingetty tty1',
      'co:2345:respawn:/sbin/agetty xvc0 9600 vt100-nav',
      '',
    ].join('\n'),
    '/etc/securetty': 'console\nvc/1\ntty1\nxvc0\n',
    '/etc/modprobe.conf': 'alias eth0 xennet\nalias scsi_hostadapter xenblk\n',
    '/etc/sysconfig/network-scripts/ifcfg-eth0': `DEVICE=eth0\nBOOTPROTO=dhcp\nHWADDR=${CENTOS5.hwaddr}\nONBOOT=yes\n`,
    '/etc/sysconfig/network-scripts/ifcfg-lo': 'DEVICE=lo\nIPADDR=127.0.0.1\nONBOOT=yes\n',
    '/etc/udev/rules.d/70-persistent-net.rules': `SUBSYSTEM=="net", ACTION=="add", ATTR{address}=="${CENTOS5.hwaddr.toLowerCase()}", NAME="eth0"\n`,
    '/etc/rc.d/rc.local': {
      data: [
        '#!/bin/sh',
        'touch /var/lock/subsys/local',
        '# fetch the key pair the instance was started with',
        'curl -f http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key > /root/.ssh/authorized_keys',
        '',
      ].join('\n'),
      mode: 0o755,
    },
    '/etc/rc.local': { link: 'rc.d/rc.local' },
    '/etc/selinux/config': 'SELINUX=enforcing\nSELINUXTYPE=targeted\n',
    [`/usr/share/grub/${grubArch}/stage1`]: Buffer.alloc(512, 1),
    [`/usr/share/grub/${grubArch}/stage2`]: Buffer.alloc(4096, 2),
    [`/usr/share/grub/${grubArch}/e2fs_stage1_5`]: Buffer.alloc(2048, 3),
  };
  if (!o.xenOnly) {
    files['/etc/image-id'] = 'image_name=euca-centos-emi\nimage_version=2012.1.14\nimage_arch=x86_64\nrecipe_name=centos-based\n';
  }
  return files;
}

/**
 * A CentOS 5 PV AMI: only kernel-xen (2.6.18-398.el5xen, XenLinux config), a nash initrd
 * loading xenblk, grub.conf with root (hd0) and console=xvc0, an xvc0 agetty. With
 * `plainKernel`, the plain el5 kernel (virtio modules, its own nash initrd) sits next to it.
 */
export function centos5Guest(o: { arch?: 'x86_64' | 'i386'; plainKernel?: boolean } = {}): GuestFixture {
  const arch = o.arch ?? 'x86_64';
  const kernels = [centos5XenKernel(arch)];
  if (o.plainKernel) kernels.push(centos5PlainKernel());
  return {
    spec: { arch, kernels, files: centos5Files({ xenOnly: !o.plainKernel, arch }) },
    image: { type: 'ext3', inodeSize: 128, label: '/', uuid: 'a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d' },
  };
}

export const AMAZON = {
  release: 'Amazon Linux AMI release 2013.09',
  version: '3.4.62-53.42.amzn1.x86_64',
  initrdModules: ['xen-blkfront', 'virtio', 'virtio_ring', 'virtio_pci', 'virtio_blk'],
} as const;

/**
 * An Amazon Linux AMI (2013.09): /etc/system-release only, a pvops kernel with xen-blkfront
 * built in and virtio as modules, a dracut initramfs, menu.lst with root (hd0),
 * root=LABEL=/ and console=hvc0, fstab by LABEL=/, an hvc0 getty, no GRUB stage files.
 */
export function amazonLinuxGuest(): GuestFixture {
  const v = AMAZON.version;
  const modDir = `/lib/modules/${v}`;
  return {
    spec: {
      arch: 'x86_64',
      kernels: [{
        version: v,
        config: kernelConfig({
          XEN: 'y',
          XEN_BLKDEV_FRONTEND: 'y',
          XEN_NETDEV_FRONTEND: 'y',
          VIRTIO: 'm',
          VIRTIO_PCI: 'm',
          VIRTIO_BLK: 'm',
          VIRTIO_NET: 'm',
          SCSI_VIRTIO: 'n',
          ATA_PIIX: 'n',
          SATA_AHCI: 'n',
          BLK_DEV_SD: 'y',
          EXT4_FS: 'y',
          JBD2: 'y',
          E1000: 'n',
        }),
        modules: [
          'kernel/drivers/virtio/virtio.ko',
          'kernel/drivers/virtio/virtio_ring.ko',
          'kernel/drivers/virtio/virtio_pci.ko',
          'kernel/drivers/block/virtio_blk.ko',
          'kernel/drivers/net/virtio_net.ko',
          'kernel/drivers/block/loop.ko',
        ],
        builtin: ['kernel/drivers/block/xen-blkfront.ko', 'kernel/drivers/net/xen-netfront.ko', 'kernel/fs/ext4/ext4.ko', 'kernel/fs/jbd2/jbd2.ko'],
        initrd: {
          name: `initramfs-${v}.img`,
          cpio: {
            '/init': { link: 'usr/lib/systemd/systemd' },
            '/usr/lib/systemd/systemd': { data: elfHeader('x86_64'), mode: 0o755 },
            '/usr/lib/dracut/modules.txt': 'base\nkernel-modules\nrootfs-block\n',
            '/usr/lib/dracut/build-parameter.txt': ' --kver ' + v + '\n',
            [`${modDir}/modules.dep`]: 'kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n',
            [`${modDir}/kernel/drivers/virtio/virtio.ko`]: fakeModule('x86_64'),
            [`${modDir}/kernel/drivers/virtio/virtio_ring.ko`]: fakeModule('x86_64'),
            [`${modDir}/kernel/drivers/virtio/virtio_pci.ko`]: fakeModule('x86_64'),
            [`${modDir}/kernel/drivers/block/virtio_blk.ko`]: fakeModule('x86_64'),
            [`${modDir}/kernel/drivers/block/xen-blkfront.ko`]: fakeModule('x86_64'),
          },
        },
      }],
      files: {
        '/etc/system-release': `${AMAZON.release}\n`,
        '/etc/fstab': [
          'LABEL=/     /           ext4    defaults,noatime  1   1',
          'tmpfs       /dev/shm    tmpfs   defaults        0   0',
          'proc        /proc       proc    defaults        0   0',
          '',
        ].join('\n'),
        '/boot/grub/menu.lst': [
          '# created by imagebuilder',
          'default=0',
          'timeout=1',
          'hiddenmenu',
          '',
          `title Amazon Linux 2013.09 (${v})`,
          'root (hd0)',
          `kernel /boot/vmlinuz-${v} root=LABEL=/ console=hvc0 LANG=en_US.UTF-8 KEYTABLE=us`,
          `initrd /boot/initramfs-${v}.img`,
          '',
        ].join('\n'),
        '/etc/grub.conf': { link: '../boot/grub/menu.lst' },
        '/etc/inittab': 'id:3:initdefault:\n',
        '/etc/init/serial.conf': 'start on stopped rc RUNLEVEL=[2345]\nexec /sbin/agetty /dev/$DEV $SPEED vt100-nav\n',
        '/etc/init/hvc0.conf': 'start on stopped rc RUNLEVEL=[2345]\nrespawn\nexec /sbin/agetty -L hvc0 38400 vt100-nav\n',
        '/etc/securetty': 'console\ntty1\nhvc0\n',
        '/etc/modprobe.d/ec2.conf': 'alias eth0 xen_netfront\n',
        '/etc/sysconfig/network-scripts/ifcfg-eth0': 'DEVICE=eth0\nBOOTPROTO=dhcp\nONBOOT=yes\nTYPE=Ethernet\nUSERCTL=yes\nPEERDNS=yes\nIPV6INIT=no\n',
        '/etc/cloud/cloud.cfg': 'datasource_list: [ Ec2, None ]\n',
        '/var/lib/cloud/instances/i-0123abcd/boot-finished': '2013-10-01\n',
        '/var/lib/cloud/instance': { link: '/var/lib/cloud/instances/i-0123abcd' },
        '/etc/selinux/config': 'SELINUX=disabled\nSELINUXTYPE=targeted\n',
      },
    },
    image: { type: 'ext4', label: '/', uuid: 'b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e' },
  };
}

export const UBUNTU1204 = {
  version: '3.2.0-23-virtual',
  initrdModules: ['virtio_blk', 'virtio_pci', 'ata_piix', 'ahci', 'libahci'],
} as const;

/**
 * An Ubuntu 12.04 cloud image: lsb-release and debian_version only, a -virtual kernel with
 * xen-blkfront and virtio built in, an initramfs-tools initrd, menu.lst (grub-legacy-ec2)
 * with root=LABEL=cloudimg-rootfs and console=hvc0, upstart hvc0/tty1 jobs, cloud-init.
 * `partitioned` puts it in partition 1, with menu.lst saying root (hd0,0) (the hd00 case).
 */
export function ubuntu1204Guest(o: { partitioned?: boolean } = {}): GuestFixture {
  const v = UBUNTU1204.version;
  const modDir = `/lib/modules/${v}`;
  const root = o.partitioned ? '(hd0,0)' : '(hd0)';
  return {
    spec: {
      arch: 'x86_64',
      kernels: [{
        version: v,
        config: kernelConfig({
          XEN: 'y',
          XEN_BLKDEV_FRONTEND: 'y',
          XEN_NETDEV_FRONTEND: 'y',
          VIRTIO: 'y',
          VIRTIO_PCI: 'y',
          VIRTIO_BLK: 'y',
          VIRTIO_NET: 'y',
          SCSI_VIRTIO: 'n',
          ATA_PIIX: 'm',
          SATA_AHCI: 'm',
          BLK_DEV_SD: 'y',
          E1000: 'm',
          EXT2_FS: 'y',
          EXT3_FS: 'y',
          EXT4_FS: 'y',
          JBD: 'y',
          JBD2: 'y',
        }),
        modules: ['kernel/drivers/ata/ata_piix.ko', 'kernel/drivers/ata/ahci.ko', 'kernel/drivers/ata/libahci.ko', 'kernel/drivers/net/e1000/e1000.ko'],
        initrd: {
          name: `initrd.img-${v}`,
          cpio: {
            '/init': { data: '#!/bin/sh\n. /scripts/functions\n. /conf/initramfs.conf\nmaybe_break top\n', mode: 0o755 },
            '/conf/initramfs.conf': 'MODULES=most\nBUSYBOX=y\n',
            '/scripts/functions': '# initramfs-tools functions\n',
            '/scripts/local': '# local root\n',
            '/bin/busybox': { data: elfHeader('x86_64'), mode: 0o755 },
            '/conf/modules': 'virtio_blk\nvirtio_pci\n',
            [`${modDir}/kernel/drivers/ata/ata_piix.ko`]: fakeModule('x86_64'),
            [`${modDir}/kernel/drivers/ata/ahci.ko`]: fakeModule('x86_64'),
            [`${modDir}/kernel/drivers/ata/libahci.ko`]: fakeModule('x86_64'),
          },
        },
      }],
      files: {
        '/etc/lsb-release': 'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=12.04\nDISTRIB_CODENAME=precise\nDISTRIB_DESCRIPTION="Ubuntu 12.04.5 LTS"\n',
        '/etc/debian_version': 'wheezy/sid\n',
        '/etc/fstab': 'LABEL=cloudimg-rootfs\t/\t ext4\tdefaults\t0 0\n',
        '/boot/grub/menu.lst': [
          '# menu.lst - See: grub(8), info grub, update-grub(8)',
          'default\t\t0',
          'timeout\t\t0',
          '## ## End Default Options ##',
          '### BEGIN AUTOMAGIC KERNELS LIST',
          '# kopt=root=LABEL=cloudimg-rootfs ro console=hvc0',
          '# groot=LABEL=cloudimg-rootfs',
          `title\t\tUbuntu 12.04.5 LTS, kernel ${v}`,
          `root\t\t${root}`,
          `kernel\t\t/boot/vmlinuz-${v} root=LABEL=cloudimg-rootfs ro console=hvc0`,
          `initrd\t\t/boot/initrd.img-${v}`,
          '',
          `title\t\tUbuntu 12.04.5 LTS, kernel ${v} (recovery mode)`,
          `root\t\t${root}`,
          `kernel\t\t/boot/vmlinuz-${v} root=LABEL=cloudimg-rootfs ro  single`,
          `initrd\t\t/boot/initrd.img-${v}`,
          '### END DEBIAN AUTOMAGIC KERNELS LIST',
          '',
        ].join('\n'),
        '/etc/init/tty1.conf': 'start on stopped rc RUNLEVEL=[2345]\nrespawn\nexec /sbin/getty -8 38400 tty1\n',
        '/etc/init/hvc0.conf': 'start on stopped rc RUNLEVEL=[2345]\nrespawn\nexec /sbin/getty -8 38400 hvc0\n',
        '/etc/network/interfaces': 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n',
        '/etc/udev/rules.d/75-persistent-net-generator.rules': '# generator\n',
        '/etc/cloud/cloud.cfg': 'user: ubuntu\n',
        '/usr/bin/cloud-init': { data: '#!/usr/bin/python\n', mode: 0o755 },
        '/boot/grub/stage1': Buffer.alloc(512, 1),
        '/boot/grub/stage2': Buffer.alloc(4096, 2),
        '/boot/grub/e2fs_stage1_5': Buffer.alloc(2048, 3),
      },
    },
    image: { type: 'ext4', label: 'cloudimg-rootfs', uuid: 'c2d3e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e6f', partitioned: o.partitioned ?? false },
  };
}

export const AKI = { release: 'Fedora release 8 (Werewolf)', version: '2.6.21.7-2.fc8xen' } as const;

/** An AMI that booted an Amazon AKI: /lib/modules/2.6.21.7-2.fc8xen, nothing in /boot. */
export function amazonAkiGuest(): GuestFixture {
  return {
    spec: {
      arch: 'i386',
      kernels: [{ version: AKI.version, inBoot: false, modules: ['kernel/drivers/xen/blkfront/xenblk.ko', 'kernel/drivers/xen/netfront/xennet.ko', 'kernel/fs/ext3/ext3.ko'] }],
      files: {
        '/etc/redhat-release': `${AKI.release}\n`,
        '/etc/fstab': '/dev/sda1  /     ext3    defaults 1 1\n/dev/sda2  /mnt  ext3    defaults 1 2\n/dev/sda3  swap  swap    defaults 0 0\n',
        '/etc/inittab': 'id:3:initdefault:\n1:2345:respawn:/sbin/mingetty tty1\n',
      },
    },
    image: { type: 'ext3', inodeSize: 128, label: '' },
  };
}
