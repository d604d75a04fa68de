import type { DriverName } from './kconfig.js';
import type { KernelInfo } from './kernels.js';
import { ec2ImportCommands, nvmeTimeoutArg, type Ec2ImportInput } from './ec2.js';

/**
 * The one table of what each target platform gives a guest and needs from it: its disk
 * buses, the names its disks get, its console, the drivers it needs, whether translation
 * builds a bootable disk, how verify boots it, and the hint printed after a translation.
 * Verdicts, the steps and diskimg read this table; nothing else restates these facts.
 */

export const TARGETS = ['kvm', 'virtualbox', 'xenserver', 'eucalyptus', 'ec2-hvm'] as const;
export type Target = (typeof TARGETS)[number];

export type Bus = 'virtio' | 'scsi' | 'sata' | 'ide' | 'xen' | 'nvme';

/** Drivers a bus needs before the root filesystem can be mounted: each inner list is alternatives. */
export const BUS_DRIVERS: Record<Bus, DriverName[][]> = {
  virtio: [['virtio_blk'], ['virtio_pci']],
  scsi: [['virtio_scsi'], ['virtio_pci'], ['sd_mod']],
  sata: [['ahci'], ['sd_mod']],
  ide: [['ata_piix'], ['sd_mod']],
  xen: [['xen_blkfront']],
  nvme: [['nvme']],
};

/** The name prefix the kernel gives a disk on each bus (vda, sda, xvda). */
export const DEVICE_PREFIX: Record<Bus, string> = { virtio: 'vd', scsi: 'sd', sata: 'sd', ide: 'sd', xen: 'xvd', nvme: 'nvme' };

/** How `amitrans verify` boots a target under QEMU (bus and NIC names as @amitrans/verify takes them). */
export interface VerifyBoot {
  /** disk: the BIOS runs the disk's MBR; direct-kernel: QEMU loads menu.lst's kernel and initrd; xen-pv: only with --direct-kernel. */
  mode: 'disk' | 'direct-kernel' | 'xen-pv';
  bus: 'virtio' | 'ide' | 'nvme';
  nic: 'virtio' | 'e1000';
  /** The Eucalyptus node controller keeps the guest clock in local time. */
  rtcLocaltime?: boolean;
}

export interface BootHintInput {
  output: string;
  /** What importCommands gave, if the target has them. */
  commands?: readonly string[];
  /** The output's format as QEMU names it (vpc for VHD). */
  qemuFormat: string;
  bus: Bus | undefined;
}

/** One kind of machine a target offers (EC2: Nitro, or the older Xen HVM types), with its root disk bus and NIC driver. */
export interface Platform {
  name: 'nitro' | 'xen-hvm';
  label: string;
  bus: Bus;
  /** What its disk and NIC drivers are called in a verdict. */
  diskLabel: string;
  netLabel: string;
  /** The NIC driver the platform requires (Nitro: ENA). */
  net: DriverName;
  netModule: string;
}

/** What a target accepts as output (the formats its import takes). */
export interface OutputRule {
  formats: readonly string[];
  /** Options the target needs of a format, applied when not given (VMDK: streamOptimized). */
  options: Readonly<Record<string, Readonly<Record<string, string>>>>;
  why: string;
}

export interface TargetFacts {
  /** Root disk buses in order of preference, the platform's native one first. */
  buses: readonly Bus[];
  /** Disk names the guest uses whatever the bus (Eucalyptus' euca-udev makes every disk sd*). */
  devicePrefix?: string;
  /**
   * The node controller's VBR disk: root sda1, ephemeral sda2, swap sda3 (Eucalyptus), so
   * fstab maps to that layout and the root is sda1 even for a bare filesystem.
   */
  vbrDisk?: boolean;
  /** A bare filesystem without a disk build is the whole disk (xvda on XenServer), not partition 1. */
  bareIsWholeDisk?: boolean;
  /** ttyS0: the emulated serial port (GRUB's too); xen: the PV console, hvc0 (xvc0 under XenLinux). */
  console: 'ttyS0' | 'xen';
  /** Disk driver module for the modprobe aliases, by bus. */
  blockModule: Partial<Record<Bus, string>>;
  /** Network driver module for the modprobe aliases. */
  netModule: string;
  /** The network driver the initrd step adds alongside the disk driver. */
  netDriver: DriverName;
  /** XenLinux (-xen) kernels boot here, with their own driver names. */
  xenLinux?: { block: string; net: string };
  /** Translation builds an MBR disk with the filesystem in partition 1 and GRUB in front. */
  diskBuild: boolean;
  /** An EC2-style metadata service at 169.254.169.254: rc.local fetches keep working. */
  metadataService: boolean;
  /** The platform boots the kernel with its own command line (not menu.lst's): the initrd's udev must keep eth0 itself. */
  ownKernelLine?: boolean;
  /** Kinds of machine the target offers, best first; the verdict names those the image runs on. */
  platforms?: readonly Platform[];
  /**
   * Disk names are not stable (NVMe namespaces appear in any order): fstab and root= must
   * name the filesystem, other disks get nofail, and names stay as the block device mapping
   * gives them (this prefix).
   */
  unstableDiskNames?: { otherDisks: string; why: string };
  /** Kernel arguments the platform advises for this kernel on this root bus. */
  kernelArgs?: (k: Pick<KernelInfo, 'version'>, bus: Bus) => string[];
  /** The container the platform imports natively: what a fleet delivers unless told otherwise. */
  nativeFormat: string;
  /** Output formats the platform's import takes. */
  outputs?: OutputRule;
  /** Commands that import the output into the platform. */
  importCommands?: (o: Ec2ImportInput) => string[];
  verify: VerifyBoot;
  bootHint(o: BootHintInput): string[];
}

const qemuLine = (o: BootHintInput, iface: string): string => `  qemu-system-x86_64 -m 1024 -nographic -drive file=${o.output},format=${o.qemuFormat},if=${iface}`;

export const TARGET_FACTS: Readonly<Record<Target, TargetFacts>> = {
  kvm: {
    nativeFormat: 'qcow2',
    buses: ['virtio', 'scsi', 'ide'],
    console: 'ttyS0',
    blockModule: { virtio: 'virtio_blk', scsi: 'virtio_scsi', ide: 'ata_piix' },
    netModule: 'virtio_net',
    netDriver: 'virtio_net',
    diskBuild: true,
    metadataService: false,
    verify: { mode: 'disk', bus: 'virtio', nic: 'virtio' },
    bootHint: (o) => ['Boot it with QEMU:', qemuLine(o, o.bus === 'virtio' ? 'virtio' : o.bus === 'ide' ? 'ide' : 'scsi')],
  },
  virtualbox: {
    nativeFormat: 'vdi',
    buses: ['sata', 'ide'],
    console: 'ttyS0',
    blockModule: { sata: 'ahci', ide: 'ata_piix' },
    netModule: 'e1000',
    netDriver: 'e1000',
    diskBuild: true,
    metadataService: false,
    verify: { mode: 'disk', bus: 'ide', nic: 'e1000' },
    bootHint: (o) => [`Attach ${o.output} to a VirtualBox VM on ${o.bus === 'sata' ? 'a SATA (AHCI)' : 'an IDE (PIIX4)'} controller, or test it with:`, qemuLine(o, 'ide')],
  },
  xenserver: {
    nativeFormat: 'vhd',
    buses: ['xen'],
    bareIsWholeDisk: true,
    console: 'xen',
    blockModule: { xen: 'xen-blkfront' },
    netModule: 'xen-netfront',
    netDriver: 'xen_netfront',
    xenLinux: { block: 'xenblk', net: 'xennet' },
    diskBuild: false,
    metadataService: false,
    verify: { mode: 'xen-pv', bus: 'virtio', nic: 'virtio' },
    bootHint: () => ['Import it on XenServer (xe vdi-import, format vhd) or register it in CloudStack as a VHD template (bzip2 it first), OS type "Other PV (64-bit)".'],
  },
  eucalyptus: {
    nativeFormat: 'raw',
    buses: ['virtio'],
    devicePrefix: 'sd',
    vbrDisk: true,
    console: 'ttyS0',
    blockModule: { virtio: 'virtio_blk' },
    netModule: 'virtio_net',
    netDriver: 'virtio_net',
    diskBuild: false,
    metadataService: true,
    ownKernelLine: true,
    verify: { mode: 'direct-kernel', bus: 'virtio', nic: 'virtio', rtcLocaltime: true },
    bootHint: () => ['Bundle and register it as an EMI (euca-bundle-image, euca-upload-bundle, euca-register) with the kexec-loader EKI/ERI or a matching EKI/ERI.'],
  },
  // AWS HVM: Nitro is KVM with EBS on NVMe and ENA networking; older HVM types are Xen HVM
  // with PV-on-HVM drivers (disks xvd*). Both boot the root volume's MBR (specs/fleet.md §5).
  'ec2-hvm': {
    // VM Import's streamOptimized VMDK: the smallest upload of the three it takes.
    nativeFormat: 'vmdk',
    buses: ['nvme', 'xen'],
    console: 'ttyS0',
    blockModule: { nvme: 'nvme', xen: 'xen-blkfront' },
    netModule: 'ena',
    netDriver: 'ena',
    platforms: [
      { name: 'nitro', label: 'Nitro', bus: 'nvme', diskLabel: 'NVMe', net: 'ena', netLabel: 'ENA', netModule: 'ena' },
      { name: 'xen-hvm', label: 'Xen HVM', bus: 'xen', diskLabel: 'Xen PV disk', net: 'xen_netfront', netLabel: 'Xen PV network', netModule: 'xen-netfront' },
    ],
    unstableDiskNames: { otherDisks: 'xvd', why: 'NVMe device names are not stable (nvme0n1 may be another volume)' },
    // Only where EBS is NVMe: a Xen-HVM-only image has no nvme driver to take it.
    kernelArgs: (k, bus) => (bus === 'nvme' ? [nvmeTimeoutArg(k.version)] : []),
    outputs: {
      formats: ['raw', 'vmdk', 'vhd'],
      options: { vmdk: { subformat: 'streamOptimized' } },
      why: 'VM Import (import-snapshot) takes RAW, VMDK streamOptimized and VHD',
    },
    importCommands: ec2ImportCommands,
    diskBuild: true,
    metadataService: true,
    verify: { mode: 'disk', bus: 'nvme', nic: 'virtio' },
    bootHint: (o) => ['Import it as an EBS snapshot and register an HVM AMI (AWS CLI):', ...(o.commands ?? []).map((c) => `  ${c}`)],
  },
};

export function targetFacts(target: Target): TargetFacts {
  return TARGET_FACTS[target];
}

/** The targets whose translation builds a bootable disk. */
export const DISK_TARGETS: readonly Target[] = TARGETS.filter((t) => TARGET_FACTS[t].diskBuild);

/** Root disk buses of each target, in order of preference. */
export const TARGET_BUSES: Readonly<Record<Target, readonly Bus[]>> = Object.fromEntries(TARGETS.map((t) => [t, TARGET_FACTS[t].buses])) as Record<Target, readonly Bus[]>;

/** Device name prefix the target's kernel gives the disk. */
export function devicePrefix(target: Target, bus: Bus): string {
  return TARGET_FACTS[target].devicePrefix ?? DEVICE_PREFIX[bus];
}

/** The root device by name on the target. */
export function rootDevice(target: Target, bus: Bus, diskBuild: boolean): string {
  const t = TARGET_FACTS[target];
  const p = devicePrefix(target, bus);
  // The root volume is the first NVMe namespace of the first controller when it is the only disk.
  if (p === 'nvme') return !diskBuild && t.bareIsWholeDisk ? '/dev/nvme0n1' : '/dev/nvme0n1p1';
  return !diskBuild && t.bareIsWholeDisk ? `/dev/${p}a` : `/dev/${p}a1`;
}

const XEN_CONSOLES = ['hvc0', 'xvc0'];

/** The Xen PV console a kernel writes to: xvc0 under XenLinux, hvc0 under pvops. */
export function xenConsole(xenLinux: boolean): string {
  return xenLinux ? 'xvc0' : 'hvc0';
}

/** console= arguments for the boot entry. */
export function kernelConsoles(target: Target, xenLinux: boolean): string[] {
  return TARGET_FACTS[target].console === 'xen' ? [xenConsole(xenLinux)] : ['tty0', 'ttyS0,115200n8'];
}

/** Consoles a boot entry may already name for the target (the first is the one to add). */
export function acceptedConsoles(target: Target, xenLinux: boolean): string[] {
  return TARGET_FACTS[target].console === 'xen' ? (xenLinux ? ['xvc0', 'hvc0'] : ['hvc0', 'xvc0']) : ['ttyS0'];
}

/** Login consoles: getty lines on `from` move to `to`. */
export function consolesToReplace(target: Target, xenConsoleName: string): { from: string[]; to: string } {
  return TARGET_FACTS[target].console === 'xen'
    ? { from: ['ttyS0', ...XEN_CONSOLES.filter((c) => c !== xenConsoleName)], to: xenConsoleName }
    : { from: XEN_CONSOLES, to: 'ttyS0' };
}

/** The disk and network driver modules the target's hardware needs (for modprobe aliases). */
export function targetModules(target: Target, bus: Bus, xenLinux: boolean): { block: string; net: string } {
  const t = TARGET_FACTS[target];
  if (xenLinux && t.xenLinux) return t.xenLinux;
  const platform = t.platforms?.find((p) => p.bus === bus);
  return { block: t.blockModule[bus] ?? t.blockModule[t.buses[0]!]!, net: platform?.netModule ?? t.netModule };
}

/** The NIC driver the target needs with this root bus. */
export function netDriver(target: Target, bus: Bus): DriverName {
  const t = TARGET_FACTS[target];
  return t.platforms?.find((p) => p.bus === bus)?.net ?? t.netDriver;
}
