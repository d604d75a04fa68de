import { access, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageError } from '@amitrans/block';
import type { ExtFs } from '@amitrans/extfs';
import { MAX_GRUB2_FILE, grub2Config, grub2Core, loadGrub2Files, type Grub2Files } from '@amitrans/grub';
import { chosenKernel, kernelConsoles, rootFor, targetKernelArgs, type BootloaderChoice, type BootloaderKind, type BootloaderOptions, type Change, type GuestReport, type TranslatePlan } from '@amitrans/guest';

/** Where Debian's grub-pc-bin and Fedora's grub2-pc-modules put GRUB 2's i386-pc files. */
export const HOST_GRUB2_DIRS = ['/usr/lib/grub/i386-pc', '/usr/lib/grub2/i386-pc'];

async function hasFile(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/** The first of `dirs` on this host that holds a GRUB 2.00+ i386-pc install set. */
export async function hostGrub2Dir(dirs: readonly string[] = HOST_GRUB2_DIRS): Promise<string | undefined> {
  for (const d of dirs) if (await hasFile(join(d, 'lzma_decompress.img')) && await hasFile(join(d, 'kernel.img'))) return d;
  return undefined;
}

/** What --grub-dir holds: GRUB legacy stage files, or GRUB 2's i386-pc files (the directory itself or its i386-pc). */
export async function grubDirKind(dir: string): Promise<{ path: string; kind: BootloaderKind }> {
  for (const d of [dir, join(dir, 'x86_64-pc'), join(dir, 'i386-pc')]) {
    if (await hasFile(join(d, 'stage1'))) return { path: dir, kind: 'grub-legacy' };
    if (await hasFile(join(d, 'lzma_decompress.img'))) return { path: d, kind: 'grub2' };
  }
  throw new ImageError('E_USAGE', `--grub-dir ${dir} holds neither GRUB legacy stage files (stage1, stage2, e2fs_stage1_5) nor GRUB 2 i386-pc files (lzma_decompress.img, kernel.img, ...)`);
}

/** The bootloader choices a run asked for (translate's, and inspect's when it is to agree with them). */
export interface BootloaderAsked {
  /** --bootloader: this one or fail. */
  bootloader?: BootloaderKind;
  /** --grub-dir: GRUB legacy stage files or GRUB 2 i386-pc files instead of the guest's own. */
  grubDir?: string;
  /** Host directories searched for GRUB 2 i386-pc files (default HOST_GRUB2_DIRS). */
  hostGrubDirs?: readonly string[];
}

/** What the bootloader choice may use besides the guest's own files. */
export async function bootloaderOptions(asked: BootloaderAsked): Promise<BootloaderOptions> {
  const host = await hostGrub2Dir(asked.hostGrubDirs ?? HOST_GRUB2_DIRS);
  return {
    ...(asked.bootloader ? { force: asked.bootloader } : {}),
    ...(asked.grubDir ? { grubDir: await grubDirKind(asked.grubDir) } : {}),
    ...(host ? { hostGrub2: host } : {}),
  };
}

/** Read a file of the chosen GRUB 2 directory, in the guest or on the host; undefined when absent. */
function reader(ext: ExtFs, choice: BootloaderChoice): (name: string) => Promise<Uint8Array | undefined> {
  const tooLarge = (path: string, size: number): ImageError => new ImageError('E_TOO_LARGE', `${path} is ${size} bytes; no GRUB 2 i386-pc file is over ${MAX_GRUB2_FILE}`, { structure: 'i386-pc' });
  if (choice.source === 'guest') {
    return async (name) => {
      const path = `${choice.from}/${name}`;
      const st = await ext.stat(path).catch(() => undefined);
      if (st?.type !== 'file') return undefined;
      if (st.size > MAX_GRUB2_FILE) throw tooLarge(path, st.size);
      return ext.readFile(path);
    };
  }
  return async (name) => {
    const path = join(choice.from, name);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) return undefined;
    if (st.size > MAX_GRUB2_FILE) throw tooLarge(path, st.size);
    return readFile(path);
  };
}

async function namesIn(ext: ExtFs, choice: BootloaderChoice): Promise<string[]> {
  return choice.source === 'guest' ? ext.readdir(choice.from) : readdir(choice.from);
}

export interface Grub2Install {
  files: Grub2Files;
  core: Uint8Array;
  /** /boot/grub, or /boot/grub2 for RHEL 7 style guests: grub.cfg and i386-pc live there. */
  bootDir: string;
  changes: Change[];
}

interface Ctx {
  ext: ExtFs;
  report: GuestReport;
  plan: TranslatePlan;
  choice: BootloaderChoice;
}

/** $prefix/i386-pc gets the modules GRUB 2 loads at run time, from the same GRUB as core.img. */
async function copyModules(c: Ctx, bootDir: string, read: (name: string) => Promise<Uint8Array | undefined>): Promise<Change[]> {
  const modDir = `${bootDir}/i386-pc`;
  if (c.choice.source === 'guest' && c.choice.from === modDir) return [];
  const names = (await namesIn(c.ext, c.choice)).filter((n) => /\.(mod|lst)$/.test(n)).sort();
  let written = 0;
  for (const name of names) {
    const bytes = await read(name);
    if (!bytes) continue;
    const path = `${modDir}/${name}`;
    const st = await c.ext.lstat(path).catch(() => undefined);
    if (st?.type === 'file' && st.size === bytes.length && Buffer.compare(await c.ext.readFile(path), bytes) === 0) continue;
    written++;
    if (!(await c.ext.exists(modDir))) await c.ext.mkdir(modDir, { recursive: true });
    if (st && st.type !== 'file') throw new ImageError('E_UNSUPPORTED', `${path} is a ${st.type}, not a file: cannot put GRUB 2's module there`);
    await c.ext.writeFile(path, bytes, { mode: 0o644 });
  }
  if (written === 0) return [];
  return [{ step: 'bootloader', file: `${modDir}/`, action: 'create', after: [`${written} of ${names.length} *.mod and *.lst files from ${c.choice.from}`], why: 'the modules GRUB 2 loads at run time ($prefix/i386-pc), from the same GRUB as core.img' }];
}

/**
 * pv-grub reads menu.lst; GRUB 2 reads grub.cfg. Debian AMIs make menu.lst a symlink to
 * grub.cfg, so it becomes a regular file (and grub.conf a link to it) before grub.cfg is written.
 */
async function splitMenuLst(c: Ctx, cfg: string): Promise<Change[]> {
  const changes: Change[] = [];
  let regular: string | undefined;
  for (const p of ['/boot/grub/menu.lst', '/boot/grub/grub.conf']) {
    const st = await c.ext.lstat(p).catch(() => undefined);
    if (st?.type !== 'symlink') continue;
    const target = await c.ext.readlink(p);
    const resolved = target.startsWith('/') ? target : `/boot/grub/${target}`;
    if (resolved.replace(/\/+/g, '/') !== cfg) continue;
    if (regular === undefined) {
      const text = await c.ext.readFile(p);
      await c.ext.unlink(p);
      await c.ext.writeFile(p, text, { mode: 0o644 });
      regular = p;
      changes.push({ step: 'bootloader', file: p, action: 'edit', before: [`-> ${target}`], why: 'a symlink to grub.cfg becomes a regular file: pv-grub keeps its menu, GRUB 2 gets its own grub.cfg' });
    } else {
      const name = regular.slice(regular.lastIndexOf('/') + 1);
      await c.ext.unlink(p);
      await c.ext.symlink(name, p);
      changes.push({ step: 'bootloader', file: p, action: 'symlink', after: [`-> ${name}`], why: 'menu.lst and grub.conf stay one file' });
    }
  }
  return changes;
}

async function writeGrubCfg(c: Ctx, bootDir: string): Promise<Change[]> {
  const k = chosenKernel(c.report, c.plan);
  const path = `${bootDir}/grub.cfg`;
  const text = grub2Config({
    title: `${c.report.distro.name}${c.report.distro.version ? ` ${c.report.distro.version}` : ''} (${k.version})`,
    kernel: k.vmlinuz,
    ...(k.initrd ? { initrd: k.initrd } : {}),
    rootArg: rootFor(c.report, c.plan, true),
    consoles: kernelConsoles(c.plan.target, k.xenOnly),
    serial: true,
    timeout: 3,
    extraArgs: [...(c.plan.selinux === 'permissive' && c.report.selinux.mode === 'enforcing' ? ['enforcing=0'] : []), ...targetKernelArgs(c.plan, k)],
  });
  const st = await c.ext.lstat(path).catch(() => undefined);
  const old = st?.type === 'file' ? Buffer.from(await c.ext.readFile(path)).toString('utf8') : undefined;
  if (old === text) return [];
  if (!(await c.ext.exists(bootDir))) await c.ext.mkdir(bootDir, { recursive: true });
  if (st && st.type !== 'file') await c.ext.unlink(path);
  await c.ext.writeFile(path, text, { mode: 0o644 });
  return [{ step: 'bootloader', file: path, action: old === undefined ? 'create' : 'edit', after: text.split('\n').filter(Boolean), why: 'GRUB 2 boots the chosen kernel with the target\'s root and consoles' }];
}

/**
 * Everything GRUB 2 needs inside the filesystem (modules in $prefix/i386-pc, grub.cfg, a
 * regular menu.lst) and its core.img, built from the chosen GRUB's own files.
 */
export async function prepareGrub2(c: Ctx): Promise<Grub2Install> {
  // RHEL 7 style guests (grub2-* tools, --with-grubdir=grub2) keep GRUB 2's files in /boot/grub2.
  const bootDir = await c.ext.exists('/boot/grub2') ? '/boot/grub2' : '/boot/grub';
  const read = reader(c.ext, c.choice);
  const where = c.choice.source === 'guest' ? `${c.choice.from} in the image` : c.choice.from;
  const files = await loadGrub2Files(read, where);
  const built = await grub2Core(files, { prefix: `(,msdos1)${bootDir}` });
  const changes = [
    ...await copyModules(c, bootDir, read),
    ...await splitMenuLst(c, `${bootDir}/grub.cfg`),
    ...await writeGrubCfg(c, bootDir),
  ];
  const sectors = Math.ceil(built.core.length / 512);
  changes.unshift({
    step: 'bootloader',
    file: '(disk: MBR and the gap after it)',
    action: 'create',
    after: [`boot.img in the MBR; core.img (${built.core.length} bytes, ${sectors} sectors, modules ${built.modules.join(' ')}, prefix (,msdos1)${bootDir}) from LBA 1 with Reed-Solomon parity`],
    why: `GRUB 2 from ${where}: ${c.choice.why}`,
  });
  return { files, core: built.core, bootDir, changes };
}
