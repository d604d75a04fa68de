import { ImageError } from '@amitrans/block';
import { TEXT_CAP, exists, list, readText, resolve } from '../fs.js';
import type { GuestReport, KernelReport } from '../inspect.js';
import { WalkBudgetError, walkBudget, walkTree } from '../walk.js';
import { NAMING_MASK } from '../network.js';
import { ecdsaCurve, hostKeyType, makeHostKey } from './sshkeys.js';
import { transformInittab, transformSecuretty } from './consoles.js';
import { rootSpec, transformFstab, type TextEdit } from './fstab.js';
import { TARGET_FACTS, acceptedConsoles, consolesToReplace, devicePrefix, kernelConsoles, rootDevice, targetModules, xenConsole, type Bus, type Target } from '../targets.js';
import { parseDiskDevice } from '../fstab.js';
import { initrdAdditions } from '../verdict.js';
import { transformGrubLegacy } from './grubconf.js';
import { maskNamingInInitrd, runInitrdStep } from './initrd.js';
import { transformModprobe } from './modules.js';
import { commentMetadataFetches, transformIfcfg, transformShadow, transformSshdConfig } from './network.js';
import { EUCA_RC_LOCAL, EUCA_UDEV_RULE, EUCA_UDEV_SCRIPT, imageIdText } from './eucalyptus.js';
import type { Change, CleanOperation, StepName, TranslatePlan, WritableGuestFs } from './types.js';

export interface StepContext {
  fs: WritableGuestFs;
  report: GuestReport;
  plan: TranslatePlan;
  /** Compute the changes without writing anything. */
  dryRun: boolean;
  /**
   * Files a dry run has already reported deleted or emptied: a later step must not report
   * them again (the real run finds them gone), so the dry run lists what the run does.
   */
  gone?: { deleted: Set<string>; emptied: Set<string> };
}

/** Has an earlier step of this dry run already deleted (or emptied) `path`? Marks it when not. */
function alreadyGone(ctx: StepContext, path: string, action: 'delete' | 'truncate'): boolean {
  if (!ctx.dryRun) return false;
  ctx.gone ??= { deleted: new Set(), emptied: new Set() };
  const { deleted, emptied } = ctx.gone;
  if (deleted.has(path) || (action === 'truncate' && emptied.has(path))) return true;
  (action === 'delete' ? deleted : emptied).add(path);
  return false;
}

export interface Step {
  name: StepName;
  description: string;
  /** Whether the step applies to this target at all. */
  appliesTo(plan: TranslatePlan): boolean;
  run(ctx: StepContext): Promise<Change[]>;
  /** What the step would change on this guest, in a few words each, for the verdict (from the inspection alone). */
  pending?(p: PendingContext): string[];
}

/** What a step's `pending` sees: the inspection and the target, kernel and bus the verdict chose. */
export interface PendingContext {
  report: GuestReport;
  target: Target;
  kernel: KernelReport;
  bus: Bus;
  /** Whether the initrd step runs (not --skip initrd). */
  inject: boolean;
}

/**
 * Does a device name in fstab or on the kernel line already name the target's disk? A bare
 * filesystem is the whole xvda on XenServer, and partition 1 of the disk built (or of
 * Eucalyptus' VBR disk) elsewhere; a partitioned image keeps its partition numbers.
 */
function fitsTarget(p: PendingContext, spec: string): boolean {
  const d = parseDiskDevice(spec);
  if (!d) return !/^\/dev\/(xvd|sd|vd|hd)/.test(spec);
  if (d.prefix !== devicePrefix(p.target, p.bus)) return false;
  if (p.report.layout !== 'bare-filesystem') return true;
  return TARGET_FACTS[p.target].bareIsWholeDisk ? d.partition === undefined : d.partition === 1;
}

/** A device name the step renames: why, for the verdict. */
function misnamed(p: PendingContext): string {
  const unstable = TARGET_FACTS[p.target].unstableDiskNames;
  return unstable ? `is a device name: ${unstable.why}; name the filesystem by UUID` : 'is named for another hypervisor';
}

/** A device name the step would rename: any on a target whose disk names move, else one that does not fit. */
function renamesDevice(p: PendingContext, spec: string): boolean {
  return TARGET_FACTS[p.target].unstableDiskNames !== undefined || !fitsTarget(p, spec);
}

/** Read a file (through symlinks), transform it, write it back in place (mode and owner kept). */
async function editFile(ctx: StepContext, step: StepName, path: string, transform: (text: string) => TextEdit, why: string): Promise<Change[]> {
  const t = await readText(ctx.fs, path);
  if (!t) return [];
  if (t.truncated) {
    // A config file this large is not one a tool wrote: edit nothing, say so, go on.
    return [{ step, file: path, action: 'skip', why: `larger than ${TEXT_CAP / 1024 / 1024} MiB, so not edited (${why}): check it by hand` }];
  }
  const edit = transform(t.text);
  if (edit.text === t.text) return [];
  if (!ctx.dryRun) await ctx.fs.writeFile(t.path, edit.text);
  const reasons = [...new Set(edit.changes.map((c) => c.why).filter(Boolean))];
  return [{
    step,
    file: t.path === path ? path : `${path} (-> ${t.path})`,
    action: 'edit',
    before: edit.changes.map((c) => c.before).filter((l) => l !== ''),
    after: edit.changes.map((c) => c.after).filter((l) => l !== ''),
    why: reasons.length ? reasons.join('; ') : why,
  }];
}

async function createFile(ctx: StepContext, step: StepName, path: string, text: string, why: string, mode = 0o644): Promise<Change[]> {
  const old = await readText(ctx.fs, path);
  if (old?.text === text) return [];
  if (!ctx.dryRun) {
    const dir = path.slice(0, path.lastIndexOf('/')) || '/';
    if (!(await exists(ctx.fs, dir))) await ctx.fs.mkdir(dir, { recursive: true });
    await ctx.fs.writeFile(old?.path ?? path, text, { mode });
  }
  return [{ step, file: path, action: old ? 'edit' : 'create', ...(old ? { before: old.text.split('\n').filter(Boolean) } : {}), after: text.split('\n').filter(Boolean), why }];
}

async function removeFile(ctx: StepContext, step: StepName, path: string, why: string): Promise<Change[]> {
  const st = await ctx.fs.lstat(path);
  if (!st || st.type === 'dir' || alreadyGone(ctx, path, 'delete')) return [];
  if (!ctx.dryRun) await ctx.fs.unlink(path);
  return [{ step, file: path, action: 'delete', why }];
}

async function truncateFile(ctx: StepContext, step: StepName, path: string, why: string): Promise<Change[]> {
  const st = await ctx.fs.lstat(path);
  if (!st || st.type !== 'file' || st.size === 0 || alreadyGone(ctx, path, 'truncate')) return [];
  if (!ctx.dryRun) await ctx.fs.writeFile(path, '');
  return [{ step, file: path, action: 'truncate', why }];
}

export function chosenKernel(report: GuestReport, plan: TranslatePlan): KernelReport {
  const k = report.kernels.find((x) => x.version === plan.kernel);
  if (!k) throw new ImageError('E_CORRUPT', `kernel ${plan.kernel} is not in the inspection report`);
  return k;
}

/** What root= and the fstab root entry say. */
export function rootFor(report: GuestReport, plan: TranslatePlan, forKernel = false): string {
  const device = rootDevice(plan.target, plan.bus, plan.diskBuild);
  // Without an initrd nothing resolves UUID= or LABEL= for the kernel: name the device.
  if (forKernel && !chosenKernel(report, plan).initrd) return device;
  return rootSpec(plan.rootBy, plan.rootFs, device);
}

const fstab: Step = {
  name: 'fstab',
  description: 'remap disk names in /etc/fstab, name the root filesystem, nofail for missing disks',
  appliesTo: () => true,
  run: (ctx) => editFile(ctx, 'fstab', '/etc/fstab', (text) => transformFstab(text, {
    target: ctx.plan.target,
    bus: ctx.plan.bus,
    diskBuild: ctx.plan.diskBuild,
    root: rootFor(ctx.report, ctx.plan),
    systemd: ctx.report.init === 'systemd',
  }), 'fstab for the target'),
  pending(p) {
    const root = p.report.fstab.find((e) => e.mountpoint === '/');
    return root?.kind === 'device' && renamesDevice(p, root.spec) ? [`fstab: root ${root.spec} ${misnamed(p)}`] : [];
  },
};

const bootloader: Step = {
  name: 'bootloader',
  description: 'menu.lst/grub.conf: the chosen kernel first, root and console for the target, one file via a symlink',
  appliesTo: () => true,
  async run(ctx) {
    const { plan, report, fs } = ctx;
    const k = chosenKernel(report, plan);
    const consoles = kernelConsoles(plan.target, k.xenOnly);
    const grubRoot = plan.diskBuild ? '(hd0,0)' : plan.grubRoot;
    const menu = await readText(fs, '/boot/grub/menu.lst');
    const conf = await readText(fs, '/boot/grub/grub.conf');
    const source = menu ?? conf;
    const options = {
      kernel: k.vmlinuz,
      ...(k.initrd ? { initrd: k.initrd } : {}),
      title: `${report.distro.name}${report.distro.version ? ` ${report.distro.version}` : ''} (${k.version})`,
      ...(grubRoot ? { grubRoot } : {}),
      rootArg: rootFor(report, plan, true),
      consoles,
      serial: TARGET_FACTS[plan.target].console === 'ttyS0',
      extraArgs: [
        ...(plan.selinux === 'permissive' && report.selinux.mode === 'enforcing' ? ['enforcing=0'] : []),
        ...(keepsKernelNames(report) ? KERNEL_NAMES_ARGS : []),
        ...targetKernelArgs(plan, k),
      ],
    };
    const changes: Change[] = [];
    if (source) {
      changes.push(...await editFile(ctx, 'bootloader', menu ? '/boot/grub/menu.lst' : '/boot/grub/grub.conf', (t) => transformGrubLegacy(t, options), 'boot the chosen kernel on the target'));
    } else {
      changes.push(...await createFile(ctx, 'bootloader', '/boot/grub/menu.lst', transformGrubLegacy('', options).text, 'no GRUB legacy configuration in the image'));
    }
    // menu.lst and grub.conf become one file: GRUB reads menu.lst, pygrub and RH tools grub.conf.
    const real = (await resolve(fs, menu ? '/boot/grub/menu.lst' : conf ? '/boot/grub/grub.conf' : '/boot/grub/menu.lst'))?.path ?? '/boot/grub/menu.lst';
    for (const other of ['/boot/grub/menu.lst', '/boot/grub/grub.conf']) {
      if (other === real) continue;
      const st = await fs.lstat(other);
      const target = real.slice(real.lastIndexOf('/') + 1);
      if (st?.type === 'symlink' && (await fs.readlink(other)) === target) continue;
      if (!ctx.dryRun) {
        if (st) await fs.unlink(other);
        await fs.symlink(target, other);
      }
      changes.push({ step: 'bootloader', file: other, action: 'symlink', after: [`-> ${target}`], why: 'menu.lst and grub.conf are one file' });
    }
    return changes;
  },
  pending: bootloaderPending,
};

/** What the bootloader step would change in the guest's GRUB legacy configuration. */
function bootloaderPending(p: PendingContext): string[] {
  const { report: r, kernel: k } = p;
  const boot = r.bootConfigs[0];
  if (!boot) return ['bootloader config: none; write /boot/grub/menu.lst'];
  const out: string[] = [];
  // The chosen kernel's own entry: kernel paths are as GRUB sees them, "/boot/vmlinuz-..."
  // on a root filesystem, "/vmlinuz-..." on a separate /boot.
  const own = boot.entries.findIndex((e) => e.kernel !== undefined && (e.kernel === k.vmlinuz || e.kernel === k.vmlinuz.replace(/^\/boot/, '')));
  const defaultIndex = boot.entries[boot.defaultIndex] ? boot.defaultIndex : 0;
  const entry = boot.entries[own] ?? boot.entries[defaultIndex];
  if (own < 0) out.push(`bootloader config: add an entry for ${k.version} and make it the default`);
  else if (own !== defaultIndex) out.push(`bootloader config: make ${k.version} the default entry`);
  const wantConsole = acceptedConsoles(p.target, k.xenOnly);
  if (entry?.rootArg?.startsWith('/dev/') && renamesDevice(p, entry.rootArg)) out.push(`bootloader config: root=${entry.rootArg} ${misnamed(p)}`);
  if (entry && !entry.consoles.some((c) => wantConsole.some((w) => c.startsWith(w)))) out.push(`bootloader config: console=${wantConsole[0]}`);
  if (TARGET_FACTS[p.target].diskBuild && entry?.root !== '(hd0,0)' && r.layout === 'bare-filesystem') out.push('bootloader config: root (hd0,0)');
  for (const arg of TARGET_FACTS[p.target].kernelArgs?.(k, p.bus) ?? []) if (!entry?.args.includes(arg)) out.push(`bootloader config: ${arg}`);
  return out;
}

const consoles: Step = {
  name: 'consoles',
  description: 'login consoles: hvc0/xvc0 -> ttyS0 (the reverse for XenServer) in inittab, securetty, systemd and upstart',
  appliesTo: () => true,
  async run(ctx) {
    const k = chosenKernel(ctx.report, ctx.plan);
    const { from, to } = consolesToReplace(ctx.plan.target, xenConsole(k.xenOnly));
    const out: Change[] = [];
    out.push(...await editFile(ctx, 'consoles', '/etc/inittab', (t) => transformInittab(t, from, to), 'getty on the target console'));
    out.push(...await editFile(ctx, 'consoles', '/etc/securetty', (t) => transformSecuretty(t, from, to), 'root login on the target console'));
    // systemd: a serial getty on the target console.
    const systemd = (await exists(ctx.fs, '/lib/systemd/system/serial-getty@.service')) || (await exists(ctx.fs, '/usr/lib/systemd/system/serial-getty@.service'));
    if (systemd) {
      const unit = (await exists(ctx.fs, '/lib/systemd/system/serial-getty@.service')) ? '/lib/systemd/system/serial-getty@.service' : '/usr/lib/systemd/system/serial-getty@.service';
      const link = `/etc/systemd/system/getty.target.wants/serial-getty@${to}.service`;
      if (!(await ctx.fs.lstat(link))) {
        if (!ctx.dryRun) {
          if (!(await exists(ctx.fs, '/etc/systemd/system/getty.target.wants'))) await ctx.fs.mkdir('/etc/systemd/system/getty.target.wants', { recursive: true });
          await ctx.fs.symlink(unit, link);
        }
        out.push({ step: 'consoles', file: link, action: 'symlink', after: [`-> ${unit}`], why: `a login prompt on ${to}` });
      }
    }
    // A getty unit for a console the target lacks: systemd waits 90 s for its device at every boot.
    for (const c of ctx.report.consoles) {
      if (c.source === 'systemd' && from.includes(c.device)) {
        out.push(...await removeFile(ctx, 'consoles', c.file, `${ctx.plan.target} has no ${c.device}: systemd would wait 90 s for the device at every boot`));
      }
    }
    // upstart (Ubuntu 12.04): /etc/init/hvc0.conf -> /etc/init/ttyS0.conf.
    for (const dev of from) {
      const job = await readText(ctx.fs, `/etc/init/${dev}.conf`);
      if (job && !(await exists(ctx.fs, `/etc/init/${to}.conf`))) {
        out.push(...await createFile(ctx, 'consoles', `/etc/init/${to}.conf`, job.text.replace(new RegExp(`\\b${dev}\\b`, 'g'), to), `a getty on ${to}, made from ${dev}.conf`));
      }
    }
    return out;
  },
  pending(p) {
    const xen = p.report.consoles.filter((c) => /^(hvc|xvc)\d/.test(c.device) && c.source !== 'securetty');
    return TARGET_FACTS[p.target].console !== 'xen' && xen.length > 0 ? [`consoles: ${xen.map((c) => c.device).join(', ')} -> ttyS0`] : [];
  },
};

const modules: Step = {
  name: 'modules',
  description: 'modprobe aliases for the target disk and network drivers',
  appliesTo: () => true,
  async run(ctx) {
    const k = chosenKernel(ctx.report, ctx.plan);
    const want = targetModules(ctx.plan.target, ctx.plan.bus, k.xenOnly);
    const files = [...new Set(ctx.report.modprobe.map((a) => a.file))];
    const out: Change[] = [];
    for (const f of files) out.push(...await editFile(ctx, 'modules', f, (t) => transformModprobe(t, want), 'target drivers'));
    return out;
  },
  pending(p) {
    const xen = p.report.modprobe.filter((a) => /^xen/.test(a.module));
    return !TARGET_FACTS[p.target].xenLinux && xen.length > 0 ? [`modules: aliases to ${xen.map((a) => a.module).join(', ')}`] : [];
  },
};

/** Kernel arguments the target advises for this kernel (EC2 Nitro: the NVMe I/O timeout). */
export function targetKernelArgs(plan: TranslatePlan, k: KernelReport): string[] {
  return TARGET_FACTS[plan.target].kernelArgs?.(k, plan.bus) ?? [];
}

/** The guest configures eth0 (or eth1...) and its udev would rename the NIC to ens3: keep kernel names. */
function keepsKernelNames(report: GuestReport): boolean {
  return report.network.renamesInterfaces && report.network.ethNames.length > 0;
}

/** What turns predictable names off for the kernel, the initrd's udev and biosdevname alike. */
const KERNEL_NAMES_ARGS = ['net.ifnames=0', 'biosdevname=0'];
const initrd: Step = {
  name: 'initrd',
  description: "add the target's disk, filesystem and network modules (and their dependencies) to the initrd when it lacks them, as mkinitrd --with does",
  appliesTo: () => true,
  run: (ctx) => runInitrdStep(ctx.fs, ctx.report, ctx.plan, chosenKernel(ctx.report, ctx.plan), ctx.dryRun),
  pending(p) {
    const k = p.kernel;
    const add = p.inject ? initrdAdditions(k, p.target, p.bus, p.report.filesystem?.type) : [];
    return add.length > 0 ? [`initrd: the initrd step adds ${add.join(', ')} (with their dependencies) to the ${k.initrdFlavour} initrd ${k.initrd}`] : [];
  },
};

const network: Step = {
  name: 'network',
  description: 'no HWADDR in ifcfg, no persistent-net rules; rc.local metadata fetches commented out where there is no EC2 metadata',
  appliesTo: () => true,
  async run(ctx) {
    const out: Change[] = [];
    for (const f of ctx.report.network.ifcfg) if (f.hwaddr) out.push(...await editFile(ctx, 'network', f.file, transformIfcfg, 'new MAC'));
    for (const r of ctx.report.network.persistentNetRules.filter((p) => p.endsWith('70-persistent-net.rules'))) {
      out.push(...await removeFile(ctx, 'network', r, 'it pins eth0 to the old MAC address; the new NIC would become eth1'));
    }
    if (keepsKernelNames(ctx.report)) {
      out.push(...await maskInterfaceRenaming(ctx));
      if (TARGET_FACTS[ctx.plan.target].ownKernelLine) out.push(...await maskNamingInInitrd(ctx.fs, chosenKernel(ctx.report, ctx.plan), NAMING_MASK, ctx.dryRun));
    }
    if (!TARGET_FACTS[ctx.plan.target].metadataService) {
      for (const file of [...new Set(ctx.report.cloud.metadataFetches.map((m) => m.file))]) {
        out.push(...await editFile(ctx, 'network', file, commentMetadataFetches, 'no metadata service'));
      }
    }
    return out;
  },
  pending(p) {
    const { report: r } = p;
    const facts = TARGET_FACTS[p.target];
    const out: string[] = [];
    if (r.network.ifcfg.some((f) => f.hwaddr)) out.push('network: HWADDR pinned in ifcfg');
    if (r.network.persistentNetRules.length > 0) out.push('network: persistent-net udev rules');
    // XenServer's verdict has never listed the fetches (its network step still comments them out).
    if (!facts.metadataService && facts.console !== 'xen' && r.cloud.metadataFetches.length > 0) out.push('cloud hooks: rc.local fetches instance metadata');
    return out;
  },
};

/**
 * Mask udev's naming rule in the root filesystem as well (systemd's documented way): a boot
 * whose kernel line is not ours (Eucalyptus' direct kernel boot) keeps eth0 too.
 */
async function maskInterfaceRenaming(ctx: StepContext): Promise<Change[]> {
  const st = await ctx.fs.lstat(NAMING_MASK);
  if (st) return [];
  if (!ctx.dryRun) {
    if (!(await exists(ctx.fs, '/etc/udev/rules.d'))) await ctx.fs.mkdir('/etc/udev/rules.d', { recursive: true });
    await ctx.fs.symlink('/dev/null', NAMING_MASK);
  }
  const names = ctx.report.network.ethNames.join(', ');
  return [{
    step: 'network',
    file: NAMING_MASK,
    action: 'symlink',
    after: ['-> /dev/null'],
    why: `the configuration brings up ${names}, and udev would rename the new NIC (ens3): kernel names kept here and by ${KERNEL_NAMES_ARGS.join(' ')} on the kernel line`,
  }];
}

const eucalyptus: Step = {
  name: 'eucalyptus',
  description: 'Eucalyptus conventions: /etc/image-id, the euca-udev rule and helper, the metadata rc.local',
  appliesTo: (plan) => plan.target === 'eucalyptus',
  async run(ctx) {
    const out: Change[] = [];
    out.push(...await createFile(ctx, 'eucalyptus', '/etc/image-id', imageIdText(ctx.plan.eucalyptus ?? {}, ctx.report), 'identifies the EMI (Eucalyptus starter-image convention)'));
    out.push(...await createFile(ctx, 'eucalyptus', '/etc/udev/rules.d/06-euca-udev.rules', EUCA_UDEV_RULE, 'xvd* and vd* disks also appear as sd*'));
    out.push(...await createFile(ctx, 'eucalyptus', '/sbin/euca-udev', EUCA_UDEV_SCRIPT, 'maps xvdXN and vdXN to sdXN for the udev rule', 0o755));
    const rc = (await exists(ctx.fs, '/etc/rc.d/rc.local')) && !(await ctx.fs.lstat('/etc/rc.local').then((s) => s?.type === 'file')) ? '/etc/rc.d/rc.local' : '/etc/rc.local';
    out.push(...await createFile(ctx, 'eucalyptus', rc, EUCA_RC_LOCAL, 'fetches the ssh key, mounts ephemeral storage and runs user-data from the metadata service', 0o755));
    return out;
  },
  pending: (p) => (p.target === 'eucalyptus' && !p.report.imageId ? ['eucalyptus: /etc/image-id and the euca-udev rule'] : []),
};

const xenserver: Step = {
  name: 'xenserver',
  description: 'CloudStack import: root password and ssh password login',
  appliesTo: (plan) => plan.rootPasswordHash !== undefined || plan.sshPasswordAuth !== undefined,
  async run(ctx) {
    const out: Change[] = [];
    if (ctx.plan.rootPasswordHash !== undefined) {
      out.push(...await editFile(ctx, 'xenserver', '/etc/shadow', (t) => transformShadow(t, ctx.plan.rootPasswordHash!), 'root password'));
    }
    if (ctx.plan.sshPasswordAuth !== undefined) {
      const yes = ctx.plan.sshPasswordAuth;
      out.push(...await editFile(ctx, 'xenserver', '/etc/ssh/sshd_config', (t) => transformSshdConfig(t, { PermitRootLogin: yes, PasswordAuthentication: yes }), 'ssh password login'));
    }
    return out;
  },
};

const selinux: Step = {
  name: 'selinux',
  description: 'SELinux enforcing: relabel on first boot (or boot permissive with --selinux permissive)',
  appliesTo: () => true,
  async run(ctx) {
    if (ctx.report.selinux.mode !== 'enforcing' || ctx.plan.selinux !== 'relabel') return [];
    return createFile(ctx, 'selinux', '/.autorelabel', '', 'files edited offline have no SELinux labels; relabel on first boot');
  },
  pending: (p) => (p.report.selinux.mode === 'enforcing' ? ['selinux: relabel on first boot'] : []),
};

const CLEAN_GLOBS: Record<CleanOperation, { dirs?: string[]; files?: string[]; homes?: string[]; mode: 'delete' | 'truncate' | 'empty-dir'; why: string }> = {
  'bash-history': { homes: ['.bash_history'], mode: 'delete', why: 'shell history of the instance' },
  'zsh-history': { homes: ['.zsh_history', '.zhistory'], mode: 'delete', why: 'shell history of the instance' },
  logfiles: { dirs: ['/var/log'], mode: 'truncate', why: 'logs of the instance (files kept, emptied)' },
  'ssh-hostkeys': { dirs: ['/etc/ssh'], mode: 'delete', why: 'every image made from this one would share host keys' },
  'machine-id': { files: ['/etc/machine-id', '/var/lib/dbus/machine-id'], mode: 'truncate', why: 'a fresh machine id is made on first boot (files kept, emptied)' },
  'udev-persistent-net': { files: ['/etc/udev/rules.d/70-persistent-net.rules'], mode: 'delete', why: 'pins interface names to old MAC addresses' },
  'package-manager-cache': { dirs: ['/var/cache/apt/archives', '/var/cache/yum', '/var/cache/dnf'], mode: 'empty-dir', why: 'downloaded packages' },
  'tmp-files': { dirs: ['/tmp', '/var/tmp'], mode: 'empty-dir', why: 'temporary files' },
  'cloud-init': { dirs: ['/var/lib/cloud/instances', '/var/lib/cloud/instance', '/var/lib/cloud/data', '/var/lib/cloud/sem'], mode: 'empty-dir', why: 'cloud-init per-instance state: the new VM runs first-boot modules again' },
  'dhcp-client-state': { dirs: ['/var/lib/dhclient', '/var/lib/dhcp', '/var/lib/dhcp3'], mode: 'empty-dir', why: 'old DHCP leases' },
  'ssh-authorized-keys': { homes: ['.ssh/authorized_keys'], mode: 'delete', why: 'keys of the instance owner (asked for)' },
};

const MAX_CLEAN_ENTRIES = 50_000;

/**
 * Visit the files under `dir`. A walk over its budget stops with a 'skip' change (what was
 * visited is cleaned, the user checks the rest); a directory cycle is an error.
 */
async function walkFiles(ctx: StepContext, dir: string, visit: (path: string) => Promise<void>): Promise<Change[]> {
  try {
    await walkTree(ctx.fs, dir, visit, walkBudget(MAX_CLEAN_ENTRIES));
    return [];
  } catch (err) {
    if (!(err instanceof WalkBudgetError)) throw err;
    return [{ step: 'clean', file: dir, action: 'skip', why: `${err.message}: the rest is not cleaned, check it by hand` }];
  }
}

/**
 * Host keys: each RSA, ECDSA and Ed25519 key is replaced by a new one made for this output
 * (sshd then starts on the first boot, and no two outputs share a key); types we do not
 * make (DSA, SSH-1) are deleted. The new keys keep the old files' modes and owners.
 */
async function renewHostKeys(ctx: StepContext, why: string): Promise<Change[]> {
  const found: string[] = [];
  const out: Change[] = await walkFiles(ctx, '/etc/ssh', async (p) => {
    if (/\/ssh_host_[^/]*key(\.pub)?$/.test(p)) found.push(p);
  });
  for (const p of found.sort()) {
    const type = hostKeyType(p.replace(/\.pub$/, ''));
    if (!type) {
      out.push(...await removeFile(ctx, 'clean', p, why));
      continue;
    }
    if (p.endsWith('.pub')) continue; // written with its private key
    const pub = `${p}.pub`;
    const curve = ecdsaCurve((await readText(ctx.fs, pub))?.text);
    const made = `replaced by a new ${type}${type === 'ecdsa' ? ` ${curve}` : ''} host key made for this output: ${why}`;
    if (!ctx.dryRun) {
      const key = makeHostKey(type, 'root@amitrans', curve);
      await ctx.fs.writeFile(p, key.privateKey, { mode: 0o600 });
      await ctx.fs.writeFile(pub, key.publicKey, { mode: 0o644 });
    }
    out.push({ step: 'clean', file: p, action: 'edit', why: made });
    out.push({ step: 'clean', file: pub, action: found.includes(pub) ? 'edit' : 'create', why: made });
  }
  return out;
}

const clean: Step = {
  name: 'clean',
  description: 'virt-sysprep-style cleaning: histories, logs, host keys, machine-id, caches, tmp, cloud-init state, DHCP leases',
  appliesTo: (plan) => plan.clean.length > 0,
  async run(ctx) {
    const out: Change[] = [];
    const homes = ['/root', ...(await list(ctx.fs, '/home')).map((h) => `/home/${h}`)];
    for (const op of ctx.plan.clean) {
      const g = CLEAN_GLOBS[op];
      const targets: string[] = [...(g.files ?? []), ...(g.homes ?? []).flatMap((f) => homes.map((h) => `${h}/${f}`))];
      for (const t of targets) out.push(...await (g.mode === 'truncate' ? truncateFile(ctx, 'clean', t, g.why) : removeFile(ctx, 'clean', t, g.why)));
      if (op === 'ssh-hostkeys') {
        out.push(...await renewHostKeys(ctx, g.why));
        continue;
      }
      for (const d of g.dirs ?? []) {
        out.push(...await walkFiles(ctx, d, async (p) => {
          out.push(...await (g.mode === 'truncate' ? truncateFile(ctx, 'clean', p, g.why) : removeFile(ctx, 'clean', p, g.why)));
        }));
      }
    }
    return out;
  },
};

export const STEPS: readonly Step[] = [fstab, bootloader, consoles, modules, initrd, network, eucalyptus, xenserver, selinux, clean];

/**
 * What the steps would change, for a verdict: the initrd step's first (it is what lets
 * the kernel find its disk), then the others in their order.
 */
export function pendingChanges(p: PendingContext): string[] {
  return [initrd, ...STEPS.filter((s) => s !== initrd)].flatMap((s) => s.pending?.(p) ?? []);
}

export interface RunStepsOptions {
  only?: readonly StepName[];
  skip?: readonly StepName[];
  /** Wraps each step's run (translate times each one as a stage). */
  around?: (name: StepName, run: () => Promise<Change[]>) => Promise<Change[]>;
}

/** Run the steps in order; the result is the change report. */
export async function runSteps(ctx: StepContext, options: RunStepsOptions = {}): Promise<Change[]> {
  const out: Change[] = [];
  for (const step of STEPS) {
    if (options.only && !options.only.includes(step.name)) continue;
    if (options.skip?.includes(step.name)) continue;
    if (!step.appliesTo(ctx.plan)) continue;
    out.push(...await (options.around ? options.around(step.name, () => step.run(ctx)) : step.run(ctx)));
  }
  return out;
}
