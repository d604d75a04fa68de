import { list, readTextOrWarn, resolve, type GuestFs, type ReadTextResult } from './fs.js';
import { DRIVER_NAMES, DRIVERS, moduleName, parseKconfig, type DriverName } from './kconfig.js';

export type DriverStatus = 'builtin' | 'module' | 'absent' | 'unknown';

export interface KernelInfo {
  version: string;
  vmlinuz: string;
  modulesDir?: string;
  initrd?: string;
  config?: string;
  /** A XenLinux kernel (CONFIG_X86_XEN / CONFIG_X86_64_XEN): boots only as a Xen PV guest. */
  xenOnly: boolean;
  /** How the kernel provides each driver inspection cares about. */
  drivers: Record<DriverName, DriverStatus>;
  /** Number of kernel modules found under modulesDir. */
  moduleCount: number;
  /** Drivers (not built in) whose module file is under modulesDir: the initrd step can add them. */
  moduleFiles?: DriverName[];
}

export interface KernelScan {
  kernels: KernelInfo[];
  /** /lib/modules versions with no kernel in /boot: the image relied on an external kernel (an Amazon AKI). */
  modulesWithoutKernel: string[];
  warnings: string[];
}

const MAX_MODULE_ENTRIES = 100_000;

/** Module names under a modules directory (walks kernel/, extra/, updates/ ...). */
async function walkModules(fs: GuestFs, dir: string, warnings: string[]): Promise<Set<string>> {
  const found = new Set<string>();
  let entries = 0;
  const stack: [string, number][] = [[dir, 0]];
  while (stack.length > 0) {
    const [d, depth] = stack.pop()!;
    if (depth > 12) continue;
    for (const name of await fs.readdir(d).catch(() => [] as string[])) {
      if (name === '.' || name === '..') continue;
      if (++entries > MAX_MODULE_ENTRIES) {
        warnings.push(`${dir}: more than ${MAX_MODULE_ENTRIES} entries; module list cut short`);
        return found;
      }
      // A name ending in .ko* or .o is a module file: stat-ing each of a few thousand
      // modules would cost a path lookup apiece; only the other names may be directories.
      const m = moduleName(name);
      if (m) {
        found.add(m);
        continue;
      }
      const path = `${d}/${name}`;
      const st = await fs.lstat(path);
      if (st?.type === 'dir') stack.push([path, depth + 1]);
    }
  }
  return found;
}

/**
 * Module names of a kernel: from modules.dep when depmod made one (one file instead of a
 * walk over thousands of .ko files), else by walking the tree.
 */
/** Module names under dir, and whether they came from modules.dep (which the initrd step needs). */
async function moduleSet(fs: GuestFs, dir: string, warnings: string[]): Promise<{ names: Set<string>; fromDep: boolean }> {
  const dep = await readTextOrWarn(fs, `${dir}/modules.dep`, warnings, 16 * 1024 * 1024);
  if (dep && !dep.truncated && dep.text.trim()) {
    const found = new Set<string>();
    for (const line of dep.text.split('\n')) {
      const colon = line.indexOf(':');
      const m = colon > 0 ? moduleName(line.slice(0, colon)) : undefined;
      if (m) found.add(m);
    }
    if (found.size > 0) return { names: found, fromDep: true };
  }
  return { names: await walkModules(fs, dir, warnings), fromDep: false };
}

/** Pick the initrd for a version: names that contain it, the shortest wins (el5 vs el5xen), kdump excluded. */
export function pickInitrd(bootFiles: readonly string[], version: string): string | undefined {
  const candidates = bootFiles.filter((n) =>
    /^(initrd|initramfs)/.test(n) && !/kdump/.test(n) &&
    (n === `initrd-${version}.img` || n === `initramfs-${version}.img` || n === `initrd.img-${version}` ||
      n === `initrd-${version}` || n === `initramfs-${version}` || n === `initrd-${version}.gz` ||
      (n.includes(version) && /^(initrd|initramfs)[-.]/.test(n))));
  return candidates.sort((a, b) => a.length - b.length || a.localeCompare(b))[0];
}

/** A text file a kernel may have; a hostile one (a link loop) is a warning, not a lost kernel. */
async function optionalText(fs: GuestFs, path: string, warnings: string[]): Promise<ReadTextResult | undefined> {
  const t = await readTextOrWarn(fs, path, warnings, TEXT_FILE_CAP);
  if (t?.truncated) warnings.push(`${path}: larger than ${TEXT_FILE_CAP} bytes; only its start was read`);
  return t;
}

const TEXT_FILE_CAP = 4 * 1024 * 1024;

export async function scanKernels(fs: GuestFs): Promise<KernelScan> {
  const warnings: string[] = [];
  const bootFiles = await list(fs, '/boot');
  const modDirs = new Map<string, string>();
  for (const base of ['/lib/modules', '/usr/lib/modules']) {
    for (const v of await list(fs, base)) if (!modDirs.has(v)) modDirs.set(v, `${base}/${v}`);
  }
  const kernels: KernelInfo[] = [];
  for (const name of bootFiles) {
    const m = /^(?:vmlinuz|vmlinux|kernel)-(.+)$/.exec(name);
    if (!m) continue;
    const version = m[1]!;
    const vmlinuz = `/boot/${name}`;
    const r = await resolve(fs, vmlinuz).catch(() => undefined);
    if (!r || r.stat.type !== 'file') {
      warnings.push(`${vmlinuz} is not a readable file`);
      continue;
    }
    const info: KernelInfo = {
      version,
      vmlinuz,
      xenOnly: false,
      drivers: Object.fromEntries(DRIVER_NAMES.map((d) => [d, 'unknown'])) as Record<DriverName, DriverStatus>,
      moduleCount: 0,
    };
    const modulesDir = modDirs.get(version);
    if (modulesDir) info.modulesDir = modulesDir;
    const initrd = pickInitrd(bootFiles, version);
    if (initrd) info.initrd = `/boot/${initrd}`;
    const configText = await optionalText(fs, `/boot/config-${version}`, warnings);
    const config = configText ? parseKconfig(configText.text) : undefined;
    if (configText) info.config = `/boot/config-${version}`;
    if (config) info.xenOnly = config.get('X86_XEN') === 'y' || config.get('X86_64_XEN') === 'y';
    const scanned = modulesDir ? await moduleSet(fs, modulesDir, warnings) : { names: new Set<string>(), fromDep: false };
    const modules = scanned.names;
    info.moduleCount = modules.size;
    const builtin = new Set<string>();
    const mb = modulesDir ? await optionalText(fs, `${modulesDir}/modules.builtin`, warnings) : undefined;
    for (const l of mb?.text.split('\n') ?? []) {
      const n = moduleName(l.trim());
      if (n) builtin.add(n);
    }
    for (const d of DRIVER_NAMES) {
      const spec = DRIVERS[d];
      const cfg = config ? spec.configs.map((c) => config.get(c)).find((v) => v === 'y' || v === 'm') : undefined;
      if (cfg === 'y' || spec.modules.some((n) => builtin.has(n))) info.drivers[d] = 'builtin';
      else if (cfg === 'm' || spec.modules.some((n) => modules.has(n))) info.drivers[d] = 'module';
      else if (config || modules.size > 0 || builtin.size > 0) info.drivers[d] = 'absent';
    }
    const files = DRIVER_NAMES.filter((d) => info.drivers[d] !== 'builtin' && DRIVERS[d].modules.some((n) => modules.has(n)));
    // Without modules.dep the step cannot know what a module needs: it adds nothing.
    if (files.length > 0 && scanned.fromDep) info.moduleFiles = files;
    kernels.push(info);
  }
  const withKernel = new Set(kernels.map((k) => k.version));
  const modulesWithoutKernel = [...modDirs.keys()].filter((v) => !withKernel.has(v)).sort();
  return { kernels, modulesWithoutKernel, warnings };
}
