import type { GuestReport, KernelReport } from './inspect.js';
import { DRIVERS, type DriverName } from './kconfig.js';
import { parseDiskDevice } from './fstab.js';
import { chooseBootloader, type BootloaderOptions } from './bootloader.js';

import { BUS_DRIVERS, TARGETS, TARGET_FACTS, acceptedConsoles, devicePrefix, type Bus, type Target } from './targets.js';

export { TARGETS, TARGET_BUSES, type Bus, type Target } from './targets.js';

export interface Verdict {
  target: Target;
  status: 'boots' | 'boots-after-translation' | 'will-not-boot';
  /** The kernel the target would boot, when one fits. */
  kernel?: string;
  /** The root disk bus the kernel can drive on this target. */
  bus?: Bus;
  /** What translation changes (status boots-after-translation). */
  changes: string[];
  /** Why it will not boot, or caveats. */
  reasons: string[];
}

/** Is the driver usable before root is mounted: built in, or a module inside the initrd. */
function early(k: KernelReport, d: DriverName): boolean {
  const s = k.drivers[d];
  if (s === 'builtin') return true;
  if (s === 'module' || s === 'unknown') return k.initrdDrivers?.includes(d) ?? false;
  return false;
}

/** Initrd flavours the initrd step can add modules to (initrd/inject.ts INJECTABLE_FLAVOURS). */
const INJECTABLE: readonly string[] = ['initramfs-tools', 'dracut', 'nash'];

/** Could the initrd step add the driver: its module file is in /lib/modules and the initrd is of a flavour it edits. */
function injectable(k: KernelReport, d: DriverName): boolean {
  return k.initrd !== undefined && INJECTABLE.includes(k.initrdFlavour ?? '') && (k.moduleFiles?.includes(d) ?? false);
}

/** The module file name of a driver in this kernel's tree (xen-blkfront, not xenblk, on a pvops kernel). */
function moduleOf(d: DriverName): string {
  return DRIVERS[d].modules[0];
}

export interface VerdictOptions {
  bus?: Bus;
  /** What a disk build may install besides the guest's own GRUB files. */
  bootloader?: BootloaderOptions;
  /** Count on the initrd step to add missing modules (default true; false with --skip initrd). */
  inject?: boolean;
}

/**
 * The modules the initrd step adds for `bus` on `target`: each disk-path driver and the
 * filesystem driver that is neither built in nor in the initrd but has a module file, and
 * then the target's network driver likewise. Dependencies come later, from modules.dep.
 */
export function initrdAdditions(k: KernelReport, target: Target, bus: Bus, fsType: string | undefined): string[] {
  const out: DriverName[] = [];
  for (const alts of BUS_DRIVERS[bus]) {
    if (alts.some((d) => early(k, d))) continue;
    const d = alts.find((x) => injectable(k, x));
    if (d) out.push(d);
  }
  const fs = fsDrivers(fsType);
  if (!fs.some((d) => early(k, d))) {
    const d = fs.find((x) => injectable(k, x));
    if (d) out.push(d);
  }
  // The network driver rides along when the initrd is rewritten anyway (as mkinitrd --with
  // would have it); on its own it is no reason to touch the initrd: the root filesystem has it.
  const net = TARGET_FACTS[target].netDriver;
  if (out.length > 0 && !early(k, net) && injectable(k, net)) out.push(net);
  return out.map(moduleOf);
}

function fsDrivers(fsType: string | undefined): DriverName[] {
  // An ext4 driver also mounts ext2/ext3 (CONFIG_EXT4_USE_FOR_EXT2 and kernels after 4.3).
  if (fsType === 'ext2') return ['ext2', 'ext3', 'ext4'];
  if (fsType === 'ext3') return ['ext3', 'ext4'];
  return ['ext4'];
}

function busFor(k: KernelReport, target: Target, fsType: string | undefined, only: Bus | undefined, inject: boolean): { bus?: Bus; missing: string[] } {
  const missing: string[] = [];
  const ok = (d: DriverName): boolean => early(k, d) || (inject && injectable(k, d));
  const fsOk = fsDrivers(fsType).some(ok);
  // The target's buses in order of preference (its native one first): the first that works, with the initrd step's help if need be.
  for (const bus of only ? [only] : TARGET_FACTS[target].buses) {
    const lacking = BUS_DRIVERS[bus].filter((alts) => !alts.some(ok)).map((alts) => alts.join('/'));
    if (lacking.length === 0 && fsOk) return { bus, missing: [] };
    missing.push(`${bus}: ${[...lacking, ...(fsOk ? [] : [`${fsDrivers(fsType).join('/')} for the ${fsType ?? 'root'} filesystem`])].join(', ')}`);
  }
  return { missing };
}

export function verdicts(report: GuestReport, options: { bootloader?: BootloaderOptions } = {}): Verdict[] {
  return TARGETS.map((t) => verdictFor(report, t, options));
}

export function verdictFor(r: GuestReport, target: Target, options: VerdictOptions = {}): Verdict {
  const v: Verdict = { target, status: 'will-not-boot', changes: [], reasons: [] };
  if (r.kernels.length === 0) {
    v.reasons.push(r.modulesWithoutKernel.length > 0
      ? `no kernel in /boot: the image relied on an external kernel (modules only for ${r.modulesWithoutKernel.join(', ')})`
      : 'no kernel in the image');
    return v;
  }
  const facts = TARGET_FACTS[target];
  const xenTarget = facts.xenLinux !== undefined;
  const candidates = r.kernels.filter((k) => xenTarget || !k.xenOnly);
  if (candidates.length === 0) {
    v.reasons.push(`only Xen-PV-only kernels (${r.kernels.map((k) => k.version).join(', ')}): they cannot boot on ${target}`);
    return v;
  }
  // Prefer the default boot entry's kernel, then the newest.
  const ordered = [...candidates].sort((a, b) => Number(b.isDefault) - Number(a.isDefault) || compareVersions(b.version, a.version));
  let chosen: { k: KernelReport; bus: Bus } | undefined;
  const missingByKernel: string[] = [];
  for (const k of ordered) {
    if (xenTarget && k.xenOnly) {
      chosen = { k, bus: 'xen' };
      break;
    }
    const { bus, missing } = busFor(k, target, r.filesystem?.type, options.bus, options.inject ?? true);
    if (bus) {
      chosen = { k, bus };
      break;
    }
    missingByKernel.push(`${k.version} lacks (neither built in nor in its initrd${k.initrd ? '' : ', which it does not have'}) ${missing.join('; ')}${whyNotInjected(k, options.inject ?? true)}`);
  }
  if (!chosen) {
    v.reasons.push(`the ${target} disk driver is neither built in nor in the initrd: ${missingByKernel.join(' | ')}`);
    return v;
  }
  v.kernel = chosen.k.version;
  v.bus = chosen.bus;
  if (facts.diskBuild && r.layout === 'bare-filesystem') {
    const boot = chooseBootloader(r, options.bootloader);
    if (!boot.kind) {
      v.status = 'will-not-boot';
      v.reasons.push(boot.why);
      return v;
    }
    v.changes.push(`build an MBR disk with the filesystem in partition 1 and install ${boot.kind === 'grub2' ? 'GRUB 2' : 'GRUB legacy'} from ${boot.from} (${boot.why})`);
  }
  if (options.inject ?? true) {
    const add = initrdAdditions(chosen.k, target, chosen.bus, r.filesystem?.type);
    if (add.length > 0) v.changes.push(`initrd: the initrd step adds ${add.join(', ')} (with their dependencies) to the ${chosen.k.initrdFlavour} initrd ${chosen.k.initrd}`);
  }
  v.changes.push(...guestChanges(r, target, chosen.k, chosen.bus));
  v.status = v.changes.length === 0 ? 'boots' : 'boots-after-translation';
  return v;
}

/** Why the initrd step cannot help this kernel, when it cannot. */
function whyNotInjected(k: KernelReport, inject: boolean): string {
  if (!inject) return ' (the initrd step is skipped)';
  if (!k.initrd) return '';
  if (!INJECTABLE.includes(k.initrdFlavour ?? '')) return `; the initrd step cannot add modules to ${k.initrd} (its flavour is ${k.initrdFlavour ?? 'not known'}; it edits initramfs-tools, dracut and nash initrds)`;
  return '';
}

function guestChanges(r: GuestReport, target: Target, k: KernelReport, bus: Bus): string[] {
  const out: string[] = [];
  const facts = TARGET_FACTS[target];
  const prefix = devicePrefix(target, bus);
  // A bare filesystem is the whole xvda on XenServer, and partition 1 of the disk built
  // (or of Eucalyptus' VBR disk) elsewhere; a partitioned image keeps its partition numbers.
  const fits = (spec: string): boolean => {
    const d = parseDiskDevice(spec);
    if (!d) return !/^\/dev\/(xvd|sd|vd|hd)/.test(spec);
    if (d.prefix !== prefix) return false;
    if (r.layout !== 'bare-filesystem') return true;
    return facts.bareIsWholeDisk ? d.partition === undefined : d.partition === 1;
  };
  const rootEntry = r.fstab.find((e) => e.mountpoint === '/');
  if (rootEntry?.kind === 'device' && !fits(rootEntry.spec)) out.push(`fstab: root ${rootEntry.spec} is named for another hypervisor`);
  const boot = r.bootConfigs[0];
  // The chosen kernel's own entry: kernel paths are as GRUB sees them, "/boot/vmlinuz-..."
  // on a root filesystem, "/vmlinuz-..." on a separate /boot.
  const own = boot ? boot.entries.findIndex((e) => e.kernel !== undefined && (e.kernel === k.vmlinuz || e.kernel === k.vmlinuz.replace(/^\/boot/, ''))) : -1;
  const defaultIndex = boot && boot.entries[boot.defaultIndex] ? boot.defaultIndex : 0;
  const entry = boot ? (boot.entries[own] ?? boot.entries[defaultIndex]) : undefined;
  if (!boot) out.push('bootloader config: none; write /boot/grub/menu.lst');
  else {
    if (own < 0) out.push(`bootloader config: add an entry for ${k.version} and make it the default`);
    else if (own !== defaultIndex) out.push(`bootloader config: make ${k.version} the default entry`);
    const wantConsole = acceptedConsoles(target, k.xenOnly);
    if (entry?.rootArg?.startsWith('/dev/') && !fits(entry.rootArg)) out.push(`bootloader config: root=${entry.rootArg} is named for another hypervisor`);
    if (entry && !entry.consoles.some((c) => wantConsole.some((w) => c.startsWith(w)))) out.push(`bootloader config: console=${wantConsole[0]}`);
    if (facts.diskBuild && entry?.root !== '(hd0,0)' && r.layout === 'bare-filesystem') out.push('bootloader config: root (hd0,0)');
  }
  const xenConsoles = r.consoles.filter((c) => /^(hvc|xvc)\d/.test(c.device) && c.source !== 'securetty');
  if (facts.console !== 'xen' && xenConsoles.length > 0) out.push(`consoles: ${xenConsoles.map((c) => c.device).join(', ')} -> ttyS0`);
  const xenAliases = r.modprobe.filter((a) => /^xen/.test(a.module));
  if (!facts.xenLinux && xenAliases.length > 0) out.push(`modules: aliases to ${xenAliases.map((a) => a.module).join(', ')}`);
  if (r.network.ifcfg.some((f) => f.hwaddr)) out.push('network: HWADDR pinned in ifcfg');
  if (r.network.persistentNetRules.length > 0) out.push('network: persistent-net udev rules');
  // XenServer's verdict has never listed the fetches (its network step still comments them out).
  if (!facts.metadataService && facts.console !== 'xen' && r.cloud.metadataFetches.length > 0) out.push('cloud hooks: rc.local fetches instance metadata');
  if (target === 'eucalyptus' && !r.imageId) out.push('eucalyptus: /etc/image-id and the euca-udev rule');
  if (r.selinux.mode === 'enforcing') out.push('selinux: relabel on first boot');
  return out;
}

/** Compare kernel versions numerically part by part ("2.6.32-5" < "2.6.32-10"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.\-_]/);
  const pb = b.split(/[.\-_]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) {
      if (nx !== ny) return nx - ny;
    } else if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
