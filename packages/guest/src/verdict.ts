import type { GuestReport, KernelReport } from './inspect.js';
import { DRIVERS, type DriverName } from './kconfig.js';
import { chooseBootloader, type BootloaderOptions } from './bootloader.js';
import { pendingChanges } from './translate/steps.js';

import { BUS_DRIVERS, TARGETS, TARGET_FACTS, netDriver, type Bus, type Platform, type Target } from './targets.js';

export { TARGETS, TARGET_BUSES, type Bus, type Target } from './targets.js';
export { compareVersions } from './versions.js';
import { compareVersions } from './versions.js';

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
  /** For a target with several kinds of machine (ec2-hvm): those the image runs on (Nitro, Xen HVM). */
  platforms?: string[];
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
  // A target with several kinds of machine gets the other kinds' disk drivers too, when it
  // can, so that one image boots on each (EC2: nvme for Nitro, xen-blkfront for Xen HVM).
  const others = (TARGET_FACTS[target].platforms ?? []).filter((p) => p.bus !== bus);
  for (const alts of [...BUS_DRIVERS[bus], ...others.flatMap((p) => BUS_DRIVERS[p.bus])]) {
    if (alts.some((d) => early(k, d) || out.includes(d))) continue;
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
  for (const net of [netDriver(target, bus), ...others.map((p) => p.net)]) {
    if (out.length > 0 && !early(k, net) && injectable(k, net) && !out.includes(net)) out.push(net);
  }
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
    const versions = r.kernels.map((k) => k.version).join(', ');
    v.reasons.push(facts.platforms
      ? `will not boot on HVM: only XenLinux kernels (${versions}), which boot only as Xen PV guests (CONFIG_X86_XEN); a pvops kernel (2.6.32 or later with CONFIG_XEN) is needed`
      : `only Xen-PV-only kernels (${versions}): they cannot boot on ${target}`);
    return v;
  }
  // Prefer the default boot entry's kernel, then the newest.
  const ordered = [...candidates].sort((a, b) => Number(b.isDefault) - Number(a.isDefault) || compareVersions(b.version, a.version));
  const inject = options.inject ?? true;
  const picked = facts.platforms ? pickForPlatforms(r, target, facts.platforms, ordered, options.bus, inject) : pickKernel(r, target, ordered, options.bus, inject);
  const chosen = picked.chosen;
  if (!chosen) {
    v.reasons.push(facts.platforms ? `runs nowhere on ${target}: ${picked.missing.join(' | ')}` : `no kernel has the ${target} disk driver before root is mounted: ${picked.missing.join(' | ')}`);
    return v;
  }
  if (facts.platforms) {
    v.platforms = picked.platforms ?? [];
    v.reasons.push(...(picked.caveats ?? []));
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
  // Each step says what it would change, next to the code that changes it.
  v.changes.push(...pendingChanges({ report: r, target, kernel: chosen.k, bus: chosen.bus, inject: options.inject ?? true }));
  v.status = v.changes.length === 0 ? 'boots' : 'boots-after-translation';
  return v;
}

interface Picked {
  chosen?: { k: KernelReport; bus: Bus };
  missing: string[];
  platforms?: string[];
  caveats?: string[];
}

/** The first kernel (in order of preference) that drives one of the target's buses. */
function pickKernel(r: GuestReport, target: Target, ordered: KernelReport[], only: Bus | undefined, inject: boolean): Picked {
  const xenTarget = TARGET_FACTS[target].xenLinux !== undefined;
  const missing: string[] = [];
  for (const k of ordered) {
    if (xenTarget && k.xenOnly) return { chosen: { k, bus: 'xen' }, missing };
    const found = busFor(k, target, r.filesystem?.type, only, inject);
    if (found.bus) return { chosen: { k, bus: found.bus }, missing };
    missing.push(`${k.version} lacks (neither built in nor in its initrd${k.initrd ? '' : ', which it does not have'}) ${found.missing.join('; ')}${whyNotInjected(k, inject)}`);
  }
  return { missing };
}

/** A NIC driver the platform requires: built in, or a module file udev loads once root is mounted. */
function hasNic(k: KernelReport, d: DriverName): boolean {
  return k.drivers[d] === 'builtin' || k.drivers[d] === 'module';
}

/** Why kernel `k` cannot run on platform `p`, or undefined when it can. */
function platformGap(r: GuestReport, target: Target, p: Platform, k: KernelReport, inject: boolean): string | undefined {
  const disk = busFor(k, target, r.filesystem?.type, p.bus, inject);
  const gaps: string[] = [];
  if (!disk.bus) gaps.push(`no ${p.diskLabel} driver (${disk.missing.join('; ').replace(/^\S+: /, '')} neither built in, in the initrd, nor a module the initrd step can add${whyNotInjected(k, inject)})`);
  if (!hasNic(k, p.net)) gaps.push(`no ${p.netLabel} driver (${moduleOf(p.net)} neither built in nor in /lib/modules/${k.version})`);
  return gaps.length ? gaps.join(', ') : undefined;
}

/**
 * A target with several kinds of machine (EC2 HVM: Nitro, then Xen HVM): the best kind any
 * kernel runs on, as AWS's own Nitro pre-check has it (nvme in the kernel or initrd, the ena
 * module), and which other kinds the chosen kernel runs on too.
 */
function pickForPlatforms(r: GuestReport, target: Target, platforms: readonly Platform[], ordered: KernelReport[], only: Bus | undefined, inject: boolean): Picked {
  const missing: string[] = [];
  const usable = platforms.filter((p) => !only || p.bus === only);
  for (const p of usable) {
    const k = ordered.find((x) => platformGap(r, target, p, x, inject) === undefined);
    if (!k) {
      missing.push(`${p.label}: ${ordered.map((x) => `${x.version} has ${platformGap(r, target, p, x, inject)!}`).join('; ')}`);
      continue;
    }
    const runs = platforms.filter((q) => platformGap(r, target, q, k, inject) === undefined);
    const caveats: string[] = [];
    const best = platforms[0]!;
    if (!runs.includes(best)) caveats.push(`${runs.map((q) => q.label).join(', ')} only: ${platformGap(r, target, best, k, inject)!}`);
    return { chosen: { k, bus: p.bus }, missing, platforms: runs.map((q) => q.label), caveats };
  }
  return { missing };
}

/** Why the initrd step cannot help this kernel, when it cannot. */
function whyNotInjected(k: KernelReport, inject: boolean): string {
  if (!inject) return ' (the initrd step is skipped)';
  if (!k.initrd) return '';
  if (!INJECTABLE.includes(k.initrdFlavour ?? '')) return `; the initrd step cannot add modules to ${k.initrd} (its flavour is ${k.initrdFlavour ?? 'not known'}; it edits initramfs-tools, dracut and nash initrds)`;
  return '';
}
