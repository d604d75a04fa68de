import { ImageError } from '@amitrans/block';
import { moduleName, type InitrdContents, type InitrdEntry, type InitrdFlavour } from './contents.js';
import { writeNewcArchive, type NewcMember } from './cpiowriter.js';
import { compressSegment, type SegmentCompression } from './encoders.js';
import { closure, depmodFor, parseModulesDep, parseSoftdeps, type DepLine, type DepmodTexts } from './depmod.js';

/** The initrd flavours whose module loading this rewrite knows (see specs/fleet.md §7). */
export const INJECTABLE_FLAVOURS: readonly InitrdFlavour[] = ['initramfs-tools', 'dracut', 'nash'];

export interface InjectRequest {
  initrd: InitrdContents;
  /** Names for messages: the initrd file and its kernel. */
  initrdPath: string;
  kernel: string;
  /** Module names to make load before root is mounted, in the order wanted. */
  want: readonly string[];
  /** The guest's depmod output in /lib/modules/<kver> (modules.dep at least). */
  guest: DepmodTexts;
  /** Modules built into the kernel (modules.builtin): nothing to add for them. */
  builtin?: ReadonlySet<string>;
  /** nash: the root device mkrootdev should use on the target, when it changes. */
  rootDevice?: string;
}

export interface InjectedModule {
  name: string;
  /** Path in the guest, relative to lib/modules/<kver>. */
  source: string;
  /** Path of the copy inside the initrd (no leading slash). */
  target: string;
}

export interface InjectPlan {
  flavour: InitrdFlavour;
  /** Modules copied in, dependencies before the modules that need them. */
  modules: InjectedModule[];
  /** Files other than modules the new segment carries (full replacements). */
  files: NewcMember[];
  /** Wanted modules the initrd already has. */
  present: string[];
  /** One line per thing changed, for the change report. */
  summary: string[];
}

export class InitrdInjectError extends ImageError {}

const enc = new TextEncoder();

function refuse(req: InjectRequest, why: string): never {
  throw new InitrdInjectError('E_UNSUPPORTED', `initrd ${req.initrdPath} of kernel ${req.kernel}: ${why} (use --skip initrd to translate without adding modules to it)`, { structure: 'initrd' });
}

/** The last member with each path, as the kernel leaves the unpacked tree. */
function finalTree(c: InitrdContents): Map<string, InitrdEntry> {
  const m = new Map<string, InitrdEntry>();
  for (const e of c.entries) m.set(e.path, e);
  return m;
}

/** A text file of the initrd read whole (or '' when absent); refuses one that was read only in part. */
function wholeText(req: InjectRequest, tree: Map<string, InitrdEntry>, path: string): string | undefined {
  const e = tree.get(path);
  if (e === undefined) return undefined;
  const text = req.initrd.textFiles[path];
  if (e.type !== 'file' || text === undefined || enc.encode(text).length !== e.size) refuse(req, `${path} could not be read whole, so it cannot be replaced`);
  return text;
}

/** Where the initrd keeps lib/modules/<kver>: usr/lib/modules on merged-/usr initrds. */
function modulesBase(tree: Map<string, InitrdEntry>, kver: string): string {
  for (const base of ['usr/lib/modules', 'lib/modules']) {
    const e = tree.get(`/${base}/${kver}`);
    if (e?.type === 'directory' || tree.has(`/${base}/${kver}/modules.dep`)) return `${base}/${kver}`;
  }
  const lib = tree.get('/lib');
  return lib?.type === 'symlink' && /^\/?usr\/lib\/?$/.test(lib.linkTarget ?? '') ? `usr/lib/modules/${kver}` : `lib/modules/${kver}`;
}

/** The dracut release the initrd was made by: lib/dracut/dracut-<version>, or undefined. */
export function dracutVersion(tree: Map<string, InitrdEntry> | InitrdContents): number | undefined {
  const paths = tree instanceof Map ? [...tree.keys()] : tree.entries.map((e) => e.path);
  for (const p of paths) {
    const m = /\/dracut-0*(\d+)[^/]*$/.exec(p);
    if (m && /(?:^|\/)(?:usr\/)?lib\/dracut\//.test(p.slice(1)) ) return Number(m[1]);
    if (m && /^\/dracut-/.test(p)) return Number(m[1]);
  }
  return undefined;
}

/**
 * What to add to an initrd so `want` load before the root filesystem is mounted, without
 * running anything of the guest: the modules with their dependencies (copied as stored)
 * and the files the flavour's loader reads, each sent whole so an appended segment
 * replaces the original. Pure: the caller reads the module files and writes the result.
 */
export function planInjection(req: InjectRequest): InjectPlan {
  const { initrd } = req;
  if (!INJECTABLE_FLAVOURS.includes(initrd.flavour)) {
    refuse(req, `its flavour is ${initrd.flavour === 'unknown' ? 'not recognised' : `${initrd.flavour}, whose module loading is not known`}; modules are added only to initramfs-tools, dracut and nash (RHEL 5 mkinitrd) initrds`);
  }
  if (initrd.incomplete) refuse(req, `it could not be read to the end (${initrd.warnings.slice(0, 2).join('; ')})`);
  const have = new Set(initrd.moduleNames);
  const builtin = req.builtin ?? new Set<string>();
  const wanted = [...new Set(req.want.map((w) => moduleName(w) ?? w))].filter((w) => !builtin.has(w));
  const present = wanted.filter((w) => have.has(w));
  const missingNames = wanted.filter((w) => !have.has(w));
  const plan: InjectPlan = { flavour: initrd.flavour, modules: [], files: [], present, summary: [] };
  if (missingNames.length === 0) return plan;
  const lines = parseModulesDep(req.guest.dep, `the guest's modules.dep of ${req.kernel}`);
  const { order, missing } = closure(lines, missingNames, parseSoftdeps(req.guest.softdep ?? ''));
  if (missing.length > 0) refuse(req, `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not in /lib/modules/${req.kernel}`);
  const adding = order.filter((l) => !have.has(l.name) && !builtin.has(l.name));
  const tree = finalTree(initrd);
  if (initrd.flavour === 'nash') return planNash(req, tree, adding, missingNames, plan);
  return planModprobe(req, tree, adding, missingNames, plan);
}

/** initramfs-tools and dracut: modules under lib/modules/<kver>, regenerated depmod files, and the loader's list. */
function planModprobe(req: InjectRequest, tree: Map<string, InitrdEntry>, adding: DepLine[], names: string[], plan: InjectPlan): InjectPlan {
  const base = modulesBase(tree, req.kernel);
  const prefix = `/${base}/`;
  for (const l of adding) plan.modules.push({ name: l.name, source: l.path, target: `${base}/${l.path}` });
  // The initrd's module set afterwards: what it had under lib/modules/<kver> plus what is added.
  const existing = req.initrd.modules.filter((m) => m.path.startsWith(prefix)).map((m) => m.path.slice(prefix.length));
  const all = [...new Set([...existing, ...adding.map((l) => l.path)])];
  const ownDep = req.initrd.textFiles[`${prefix}modules.dep`];
  const dep = depmodFor(all, req.guest, ownDep);
  for (const [name, bytes] of dep.files) plan.files.push({ path: `${base}/${name}`, type: 'file', data: bytes });
  plan.summary.push(`modules ${adding.map((l) => l.path.slice(l.path.lastIndexOf('/') + 1)).join(' ')} (in ${base})`);
  plan.summary.push(`${base}/${[...dep.files.keys()].join(', ')} regenerated for ${all.length} modules`);
  if (req.initrd.flavour === 'initramfs-tools') {
    // load_modules modprobes each line of /conf/modules after init-top.
    const old = wholeText(req, tree, '/conf/modules') ?? '';
    const listed = new Set(old.split('\n').map((l) => moduleName(l.replace(/#.*/, '').trim().split(/\s+/)[0] ?? '') ?? ''));
    const more = names.filter((n) => !listed.has(n));
    const text = `${old}${old === '' || old.endsWith('\n') ? '' : '\n'}${more.map((n) => `${n}\n`).join('')}`;
    plan.files.push({ path: 'conf/modules', type: 'file', data: enc.encode(text) });
    plan.summary.push(`conf/modules: + ${more.join(' ')}`);
    return plan;
  }
  const version = dracutVersion(tree);
  if (version !== undefined && version < 14) {
    // dracut 004-013 reads /etc/cmdline and calls the option rdloaddriver.
    const old = wholeText(req, tree, '/etc/cmdline') ?? '';
    const line = `rdloaddriver=${names.join(',')}`;
    plan.files.push({ path: 'etc/cmdline', type: 'file', data: enc.encode(`${old}${old === '' || old.endsWith('\n') ? '' : '\n'}${line}\n`) });
    plan.summary.push(`etc/cmdline: + ${line} (dracut ${String(version).padStart(3, '0')})`);
    return plan;
  }
  const line = `rd.driver.pre=${names.join(',')}`;
  plan.files.push({ path: 'etc/cmdline.d/90-amitrans.conf', type: 'file', data: enc.encode(`${line}\n`) });
  plan.summary.push(`etc/cmdline.d/90-amitrans.conf: ${line}`);
  return plan;
}

/** RHEL 5 mkinitrd: modules flat in /lib, insmod lines in /init before mkrootdev, in dependency order. */
function planNash(req: InjectRequest, tree: Map<string, InitrdEntry>, adding: DepLine[], _names: string[], plan: InjectPlan): InjectPlan {
  const init = wholeText(req, tree, '/init');
  if (init === undefined) refuse(req, 'it has no /init script');
  for (const l of adding) {
    const file = l.path.slice(l.path.lastIndexOf('/') + 1);
    if (!/\.ko$/.test(file)) refuse(req, `${l.path} is compressed, and nash's insmod loads only plain .ko files`);
    plan.modules.push({ name: l.name, source: l.path, target: `lib/${file}` });
  }
  const text = nashInsertInsmods(init, plan.modules.map((m) => m.target.slice(4)), req.rootDevice);
  if (text === undefined) refuse(req, '/init has no mkrootdev line to load modules before');
  plan.files.push({ path: 'init', type: 'file', mode: tree.get('/init')!.mode & 0o7777, data: enc.encode(text) });
  plan.summary.push(`modules ${plan.modules.map((m) => m.target).join(' ')}`);
  plan.summary.push(`init: insmod ${plan.modules.map((m) => m.target.slice(4)).join(', ')} before mkrootdev`);
  return plan;
}

const DISK_NAME = /^(\/dev\/)?(xvd|sd|hd|vd)[a-z]+\d*$/;

/**
 * A nash /init with `echo "Loading X module"` / `insmod /lib/X` for each of `files` after
 * the last insmod before mkrootdev (or right before mkrootdev when there is none), and
 * mkrootdev's device renamed to `rootDevice` when it names a disk. Undefined without mkrootdev.
 */
export function nashInsertInsmods(init: string, files: readonly string[], rootDevice?: string): string | undefined {
  const lines = init.split('\n');
  const mk = lines.findIndex((l) => /^\s*mkrootdev\b/.test(l));
  if (mk < 0) return undefined;
  let at = mk;
  for (let i = mk - 1; i >= 0; i--) {
    if (/^\s*insmod\b/.test(lines[i]!)) {
      at = i + 1;
      break;
    }
  }
  if (at === mk) {
    // Keep mkinitrd's "echo Creating root device." with its mkrootdev.
    while (at > 0 && /^\s*echo\b/.test(lines[at - 1]!) && !/Loading/.test(lines[at - 1]!)) at--;
  }
  const add = files.flatMap((f) => [`echo "Loading ${f} module"`, `insmod /lib/${f}`]);
  if (rootDevice !== undefined) {
    const words = lines[mk]!.trim().split(/\s+/);
    const last = words[words.length - 1]!;
    if (DISK_NAME.test(last) && last !== rootDevice) lines[mk] = lines[mk]!.replace(new RegExp(`${last.replace(/[/]/g, '\\/')}\\s*$`), rootDevice);
  }
  lines.splice(at, 0, ...add);
  return lines.join('\n');
}

/** The members a plan adds, given the bytes of each module (by its guest path): modules first, then the files that name them. */
export function injectionMembers(plan: InjectPlan, moduleBytes: ReadonlyMap<string, Uint8Array>): NewcMember[] {
  const members: NewcMember[] = plan.modules.map((m) => {
    const data = moduleBytes.get(m.source);
    if (data === undefined) throw new ImageError('E_CORRUPT', `no data for module ${m.source}`, { structure: 'initrd' });
    return { path: m.target, type: 'file', mode: 0o644, data };
  });
  return [...members, ...plan.files];
}

/** The newc archive of a plan, given the bytes of each module (by its guest path). */
export function injectionArchive(plan: InjectPlan, moduleBytes: ReadonlyMap<string, Uint8Array>): Uint8Array {
  return writeNewcArchive(injectionMembers(plan, moduleBytes));
}

/**
 * The initrd with one more segment: the original bytes unchanged (early microcode cpio and
 * all), then the archive compressed. The kernel needs no alignment before a compressed
 * segment, and without padding a gzip or zstd segment after one of its kind is one valid
 * multi-member stream to gzip/zstd too. Files in it replace the original's.
 */
export function appendSegment(original: Uint8Array, archive: Uint8Array, compression: SegmentCompression = 'gzip'): Uint8Array {
  const seg = compressSegment(archive, compression);
  const out = new Uint8Array(original.length + seg.length);
  out.set(original);
  out.set(seg, original.length);
  return out;
}
