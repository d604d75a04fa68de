import { list, type GuestFs } from './fs.js';
import type { GuestReport } from './inspect.js';

/** GRUB 2 i386-pc files inside the guest (2.00 or later: those have lzma_decompress.img). */
export interface Grub2Report {
  dir: string;
  /** From normal.mod's version string, when it has one ("2.06-13+deb12u2"). */
  version?: string;
  modules: number;
}

/** Where distributions keep GRUB 2's i386-pc files: the package's, then grub-install's copies. */
export const GRUB2_DIRS = ['/usr/lib/grub/i386-pc', '/usr/lib/grub2/i386-pc', '/boot/grub/i386-pc', '/boot/grub2/i386-pc'];
const GRUB2_NEEDS = ['boot.img', 'diskboot.img', 'lzma_decompress.img', 'kernel.img', 'moddep.lst', 'ext2.mod', 'part_msdos.mod', 'biosdisk.mod'];
/** normal.mod is ~200 KiB; its version string is read only from a file of sane size. */
const MAX_NORMAL_MOD = 4 << 20;

/** The version GRUB prints in its banner, stored as a NUL-terminated string in normal.mod. */
export function grub2Version(normalMod: Uint8Array): string | undefined {
  const text = Buffer.from(normalMod).toString('latin1');
  const m = /\0(\d\.\d{2}(?:[~+.-][0-9A-Za-z~+.-]*)?)\0/.exec(text);
  return m?.[1];
}

export async function findGrub2(fs: GuestFs): Promise<Grub2Report | undefined> {
  for (const dir of GRUB2_DIRS) {
    const names = await list(fs, dir);
    if (!GRUB2_NEEDS.every((n) => names.includes(n))) continue;
    const r: Grub2Report = { dir, modules: names.filter((n) => n.endsWith('.mod')).length };
    const st = await fs.lstat(`${dir}/normal.mod`);
    if (st?.type === 'file' && st.size <= MAX_NORMAL_MOD) {
      const v = grub2Version(await fs.read(`${dir}/normal.mod`, 0, st.size));
      if (v) r.version = v;
    }
    return r;
  }
  return undefined;
}

export type BootloaderKind = 'grub-legacy' | 'grub2';

export interface BootloaderOptions {
  /** --bootloader: use this one or fail. */
  force?: BootloaderKind;
  /** --grub-dir, and which GRUB its files are. */
  grubDir?: { path: string; kind: BootloaderKind };
  /** A GRUB 2 i386-pc directory on this host (Debian grub-pc-bin, Fedora grub2-pc-modules). */
  hostGrub2?: string;
}

export interface BootloaderChoice {
  kind: BootloaderKind;
  /** Where its files come from: a guest directory, --grub-dir or the host's. */
  from: string;
  source: 'guest' | 'grub-dir' | 'host';
  why: string;
}

/** Can GRUB legacy's e2fs_stage1_5 read the filesystem (the test checkFilesystemSupport makes on its bytes)? */
function legacyReads(r: GuestReport): string | undefined {
  const fs = r.filesystem;
  if (!fs || r.grubStages?.readsExt4) return undefined;
  if (fs.features?.includes('extent')) return 'the filesystem uses extents, which these GRUB legacy stage files cannot read';
  if (fs.inodeSize !== 128) return `the filesystem has ${fs.inodeSize}-byte inodes, which these GRUB legacy stage files cannot read`;
  return undefined;
}

export const NO_BOOTLOADER = 'no bootloader for the disk build: the image has neither GRUB legacy stage files (stage1, stage2, e2fs_stage1_5) nor GRUB 2 i386-pc files (2.00 or later), and this host has no /usr/lib/grub/i386-pc: install grub-pc-bin (Debian, Ubuntu) or grub2-pc-modules (Fedora, RHEL), or give --grub-dir DIR';

/**
 * Which GRUB a disk build installs: the guest's own GRUB legacy when its stage files can
 * read the filesystem (what the distribution used), else the guest's GRUB 2, else --grub-dir
 * or the host's GRUB 2. Returns a reason instead when there is none.
 */
export function chooseBootloader(r: GuestReport, o: BootloaderOptions = {}): BootloaderChoice | { kind?: undefined; why: string } {
  const legacyGap = legacyReads(r);
  const legacyOk = r.grubStages !== undefined && legacyGap === undefined;
  const grub2 = r.grub2 ? `GRUB 2${r.grub2.version ? ` ${r.grub2.version}` : ''}` : '';
  const want = (k: BootloaderKind): boolean => o.force === undefined || o.force === k;
  if (o.grubDir && want(o.grubDir.kind)) return { kind: o.grubDir.kind, from: o.grubDir.path, source: 'grub-dir', why: 'given with --grub-dir' };
  if (o.grubDir && o.force) return { why: `--bootloader ${o.force}, but --grub-dir ${o.grubDir.path} holds ${o.grubDir.kind} files` };
  if (legacyOk && want('grub-legacy')) return { kind: 'grub-legacy', from: r.grubStages!.dir, source: 'guest', why: 'the guest\'s own GRUB legacy stage files' };
  const notLegacy = o.force === 'grub2' ? '--bootloader grub2' : legacyGap && r.grubStages ? legacyGap : 'the image has no GRUB legacy stage files';
  if (r.grub2 && want('grub2')) return { kind: 'grub2', from: r.grub2.dir, source: 'guest', why: `${notLegacy}; the guest's own ${grub2}` };
  if (o.hostGrub2 && want('grub2')) return { kind: 'grub2', from: o.hostGrub2, source: 'host', why: `${notLegacy}, nor GRUB 2 i386-pc files: this host's GRUB 2` };
  if (o.force === 'grub-legacy') return { why: r.grubStages ? `--bootloader grub-legacy: ${legacyGap ?? 'the stage files lack e2fs_stage1_5'}` : '--bootloader grub-legacy, but the image has no GRUB legacy stage files: give them with --grub-dir (Debian package grub-legacy has them)' };
  return { why: legacyGap && r.grubStages ? `${legacyGap}, and no GRUB 2 is available: install grub-pc-bin (Debian, Ubuntu) or grub2-pc-modules (Fedora, RHEL) on this host, or give --grub-dir DIR` : NO_BOOTLOADER };
}
