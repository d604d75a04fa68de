import { ImageError } from '@amitrans/block';
import { parseGrub2, parseGrubLegacy, type BootConfig } from './bootconfig.js';
import { detectCloudHooks, detectImageId, detectSelinux, type CloudHooks, type SelinuxConfig } from './cloud.js';
import { detectConsoles, type ConsoleEntry } from './consoles.js';
import { detectDistro, type Distro } from './distro.js';
import { detectArch, type Arch } from './elf.js';
import { parseFstab, type FstabEntry } from './fstab.js';
import { exists, list, readText, resolve, type GuestFs } from './fs.js';
import { DRIVER_NAMES, DRIVERS, type DriverName } from './kconfig.js';
import { scanKernels, type KernelInfo } from './kernels.js';
import { detectModprobeAliases, type ModprobeAlias } from './modprobe.js';
import { detectInit, type InitSystem } from './init.js';
import { detectNetwork, type NetworkConfig } from './network.js';
import { verdicts, type Verdict } from './verdict.js';
import { findGrub2, type BootloaderOptions, type Grub2Report } from './bootloader.js';

/** What an initrd holds, as far as booting is concerned. */
export interface InitrdSummary {
  modules: string[];
  flavour: 'nash' | 'dracut' | 'initramfs-tools' | 'busybox' | 'unknown';
  warnings: string[];
}

export interface KernelReport extends KernelInfo {
  /** The kernel of the bootloader's default entry. */
  isDefault: boolean;
  initrdFlavour?: InitrdSummary['flavour'];
  /** Kernel modules inside the initrd. */
  initrdModules?: string[];
  /** Drivers (of those inspection reports) present in the initrd as modules. */
  initrdDrivers?: DriverName[];
}

export interface GrubStages {
  dir: string;
  stage1: string;
  stage2: string;
  e2fsStage1_5?: string;
  /** The stage 1.5 reads extents and 256-byte inodes (Debian's ext4-patched 0.97). */
  readsExt4?: boolean;
}

export interface GuestReport {
  layout: 'bare-filesystem' | 'partitioned';
  filesystem?: { type: string; label: string; uuid: string; inodeSize: number; features?: string[] };
  distro: Distro;
  arch: Arch;
  kernels: KernelReport[];
  modulesWithoutKernel: string[];
  bootConfigs: BootConfig[];
  /** Would Amazon's pv-grub find the menu: hd0 (partition-less) or hd00 (partition 1) flavour. */
  pvgrub: { hd0: boolean; hd00: boolean };
  fstab: FstabEntry[];
  consoles: ConsoleEntry[];
  modprobe: ModprobeAlias[];
  network: NetworkConfig;
  /** PID 1: systemd, upstart, sysvinit. */
  init: InitSystem;
  cloud: CloudHooks;
  selinux: SelinuxConfig;
  imageId?: Record<string, string>;
  /** GRUB legacy stage files available inside the guest for a disk build. */
  grubStages?: GrubStages;
  /** GRUB 2 (2.00+) i386-pc files inside the guest. */
  grub2?: Grub2Report;
  verdicts: Verdict[];
  warnings: string[];
}

export interface InspectContext {
  layout: GuestReport['layout'];
  filesystem?: GuestReport['filesystem'];
  /** Summarise an initrd file of the guest; errors become warnings. */
  readInitrd?: (path: string, size: number) => Promise<InitrdSummary>;
  /** What the disk-target verdicts may use besides the guest's own GRUB (--grub-dir, the host's GRUB 2). */
  bootloader?: BootloaderOptions;
}

/**
 * Initrds are read up to this size. GRUB legacy and the x86 boot protocol load an initrd
 * below 2 GiB, real ones are tens of MiB; a larger file is hostile or broken and reading
 * all of it (even holes) would only cost time.
 */
export const MAX_INITRD_READ = 256 * 1024 * 1024;

export const BOOT_CONFIG_FILES = ['/boot/grub/menu.lst', '/boot/grub/grub.conf', '/boot/grub/grub.cfg', '/boot/grub2/grub.cfg'];
const GRUB_STAGE_DIRS = ['/boot/grub', '/usr/lib/grub/x86_64-pc', '/usr/lib/grub/i386-pc', '/usr/share/grub/x86_64-redhat', '/usr/share/grub/i386-redhat', '/usr/share/grub/x86_64-pc', '/usr/share/grub/i386-pc'];

/** Run one inspection step; a hostile or broken file becomes a warning, not a failed report. */
async function step<T>(warnings: string[], what: string, fn: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof ImageError)) throw err;
    warnings.push(err.message.startsWith(`${what}: `) ? err.message : `${what}: ${err.message}`);
    return fallback;
  }
}

export async function findGrubStages(fs: GuestFs): Promise<GrubStages | undefined> {
  for (const dir of GRUB_STAGE_DIRS) {
    const names = await list(fs, dir);
    if (names.includes('stage1') && names.includes('stage2')) {
      const s: GrubStages = { dir, stage1: `${dir}/stage1`, stage2: `${dir}/stage2` };
      if (names.includes('e2fs_stage1_5')) {
        s.e2fsStage1_5 = `${dir}/e2fs_stage1_5`;
        const st = await fs.lstat(s.e2fsStage1_5);
        // The extent-capable builds carry the extent header magic 0xF30A (see @amitrans/grub).
        if (st?.type === 'file' && st.size <= 0x6000) s.readsExt4 = Buffer.from(await fs.read(s.e2fsStage1_5, 0, st.size)).includes(Buffer.from([0x0a, 0xf3]));
      }
      return s;
    }
  }
  return undefined;
}

export async function inspectGuest(fs: GuestFs, ctx: InspectContext): Promise<GuestReport> {
  const warnings: string[] = [];
  const distro = await step(warnings, 'distribution', () => detectDistro(fs, warnings), { id: 'unknown', name: 'unknown', version: '', family: 'unknown', source: '' } as Distro);
  const { arch } = await step(warnings, 'architecture', () => detectArch(fs), { arch: 'unknown' as Arch, source: '' });
  const scan = await step(warnings, 'kernels', () => scanKernels(fs), { kernels: [], modulesWithoutKernel: [], warnings: [] });
  warnings.push(...scan.warnings);

  const bootConfigs: BootConfig[] = [];
  const seenBoot = new Set<string>();
  for (const file of BOOT_CONFIG_FILES) {
    const t = await step(warnings, file, () => readText(fs, file), undefined);
    if (!t || seenBoot.has(t.path)) continue;
    seenBoot.add(t.path);
    if (t.truncated) warnings.push(`${file}: larger than 1 MiB; only its start was read`);
    bootConfigs.push(file.endsWith('grub.cfg') ? parseGrub2(file, t.text) : parseGrubLegacy(file, t.text));
  }
  const menuLst = await step(warnings, 'menu.lst', () => exists(fs, '/boot/grub/menu.lst'), false);
  const pvgrub = { hd0: ctx.layout === 'bare-filesystem' && menuLst, hd00: ctx.layout === 'partitioned' && menuLst };

  const defaultKernel = (() => {
    const cfg = bootConfigs[0];
    const e = cfg ? (cfg.entries[cfg.defaultIndex] ?? cfg.entries[0]) : undefined;
    return e?.kernel;
  })();
  const kernels: KernelReport[] = [];
  // Initrds are read while the rest of the guest is inspected: their decompression runs on
  // the thread pool. Their warnings go where they would have gone had they been awaited here.
  const initrdJobs: Promise<string[]>[] = [];
  for (const k of scan.kernels) {
    const rep: KernelReport = { ...k, isDefault: defaultKernel !== undefined && (defaultKernel === k.vmlinuz || defaultKernel === k.vmlinuz.replace(/^\/boot/, '')) };
    if (k.initrd && ctx.readInitrd) {
      const job = summariseKernelInitrd(fs, k.initrd, rep, ctx.readInitrd);
      // Awaited below; this only keeps a failure from being reported as unhandled first.
      job.catch(() => undefined);
      initrdJobs.push(job);
    }
    kernels.push(rep);
  }
  const initrdWarningsAt = warnings.length;

  const fstabWarnings = warnings.length;
  const fstabText = await step(warnings, '/etc/fstab', () => readText(fs, '/etc/fstab'), undefined);
  const fstabFailed = warnings.length > fstabWarnings;
  const report: GuestReport = {
    layout: ctx.layout,
    distro,
    arch,
    kernels,
    modulesWithoutKernel: scan.modulesWithoutKernel,
    bootConfigs,
    pvgrub,
    fstab: fstabText ? parseFstab(fstabText.text) : [],
    consoles: await step(warnings, 'consoles', () => detectConsoles(fs, warnings), []),
    modprobe: await step(warnings, 'modprobe', () => detectModprobeAliases(fs, warnings), []),
    network: await step(warnings, 'network', () => detectNetwork(fs, warnings), { ifcfg: [], interfaces: [], persistentNetRules: [], ethNames: [], renamesInterfaces: false }),
    init: await step(warnings, 'init', () => detectInit(fs), 'unknown' as InitSystem),
    cloud: await step(warnings, 'cloud hooks', () => detectCloudHooks(fs, warnings), { metadataFetches: [], cloudInit: false, cloudInitState: false }),
    selinux: await step(warnings, 'selinux', () => detectSelinux(fs), { mode: 'absent' } as SelinuxConfig),
    verdicts: [],
    warnings,
  };
  if (ctx.filesystem) report.filesystem = ctx.filesystem;
  const imageId = await step(warnings, '/etc/image-id', () => detectImageId(fs), undefined);
  if (imageId) report.imageId = imageId;
  const stages = await step(warnings, 'grub stages', () => findGrubStages(fs), undefined);
  if (stages) report.grubStages = stages;
  const grub2 = await step(warnings, 'grub2', () => findGrub2(fs), undefined);
  if (grub2) report.grub2 = grub2;
  warnings.splice(initrdWarningsAt, 0, ...(await Promise.all(initrdJobs)).flat());
  if (!fstabText && !fstabFailed) warnings.push('/etc/fstab: missing');
  if (fstabText?.truncated) warnings.push('/etc/fstab: larger than 1 MiB; only its start was read');
  report.verdicts = verdicts(report, ctx.bootloader ? { bootloader: ctx.bootloader } : {});
  return report;
}

/** Fill in what a kernel's initrd carries; its warnings are returned, not pushed. */
async function summariseKernelInitrd(
  fs: GuestFs,
  initrd: string,
  rep: KernelReport,
  readInitrd: NonNullable<InspectContext['readInitrd']>,
): Promise<string[]> {
  const warnings: string[] = [];
  const r = await resolve(fs, initrd).catch(() => undefined);
  if (r?.stat.type !== 'file') return warnings;
  try {
    if (r.stat.size > MAX_INITRD_READ) warnings.push(`${initrd}: ${r.stat.size} bytes, larger than any initrd a boot loader loads; only its first ${MAX_INITRD_READ} bytes were read`);
    const summary = await readInitrd(r.path, Math.min(r.stat.size, MAX_INITRD_READ));
    rep.initrdFlavour = summary.flavour;
    rep.initrdModules = summary.modules;
    rep.initrdDrivers = DRIVER_NAMES.filter((d) => DRIVERS[d].modules.some((m) => summary.modules.includes(m)));
    warnings.push(...summary.warnings.map((w) => `${initrd}: ${w}`));
  } catch (err) {
    if (!(err instanceof ImageError)) throw err;
    warnings.push(`${initrd}: ${err.message}`);
  }
  return warnings;
}
