import { ImageError } from '@amitrans/block';

/**
 * Offsets in the GRUB 0.97 stage files (stage1.h, shared.h), checked byte for byte against
 * `grub> setup (hd0)` (../shared/specs/grub-legacy.md §2-4).
 */
export const SECTOR = 512;

/** stage1 (the MBR) parameter block. */
export const STAGE1 = {
  BPB_START: 0x003,
  BPB_END: 0x03e, // exclusive: 0x003-0x03D come from the old MBR
  VER_MAJ: 0x03e,
  VER_MIN: 0x03f,
  BOOT_DRIVE: 0x040,
  FORCE_LBA: 0x041,
  STAGE2_ADDRESS: 0x042,
  STAGE2_SECTOR: 0x044,
  STAGE2_SEGMENT: 0x048,
  BOOT_DRIVE_CHECK: 0x04b,
  WINDOWS_NT_MAGIC: 0x1b8, // from here to 0x1FD: kept from the old MBR
  SIGNATURE: 0x1fe,
} as const;

/** Fields of the second sector of a stage 1.5 or stage2 (offsets inside that sector). */
export const STAGE2_SECTOR2 = {
  VER_MAJ: 0x06,
  VER_MIN: 0x07,
  INSTALL_PARTITION: 0x08,
  SAVED_ENTRYNO: 0x0c,
  STAGE2_ID: 0x10,
  FORCE_LBA: 0x11,
  VERSION_STRING: 0x12,
  /** The config area must end before the code at 0x70 (the ljmp target). */
  CONFIG_END: 0x70,
} as const;

export const COMPAT_MAJOR = 3;
export const COMPAT_MINOR = 2;
/** A stage 1.5 is loaded at 0x2000 and stage2 at 0x8000: it must stay below 24 KiB. */
export const MAX_STAGE1_5 = 0x6000;

export interface StageFiles {
  stage1: Uint8Array;
  /** e2fs_stage1_5. */
  stage1_5: Uint8Array;
  /** stage2, when its config name or force_lba byte should be patched too. */
  stage2?: Uint8Array;
}

function compat(buf: Uint8Array, at: number, what: string, structure: string): void {
  const major = buf[at];
  const minor = buf[at + 1];
  if (major !== COMPAT_MAJOR || minor !== COMPAT_MINOR) {
    throw new ImageError('E_UNSUPPORTED',
      `${what} has compat version ${major}.${minor}; only GRUB legacy 0.97 stage files (compat 3.2) are supported`,
      { structure, offset: at });
  }
}

/** Check that the stage files are GRUB 0.97 files that belong together. */
export function checkStages(s: StageFiles): void {
  if (s.stage1.length !== SECTOR) {
    throw new ImageError('E_CORRUPT', `stage1 is ${s.stage1.length} bytes, not 512`, { structure: 'stage1' });
  }
  compat(s.stage1, STAGE1.VER_MAJ, 'stage1', 'stage1');
  if (s.stage1[STAGE1.SIGNATURE] !== 0x55 || s.stage1[STAGE1.SIGNATURE + 1] !== 0xaa) {
    throw new ImageError('E_BAD_MAGIC', 'stage1 does not end in 55 AA', { structure: 'stage1', offset: STAGE1.SIGNATURE });
  }
  if (s.stage1_5.length < 2 * SECTOR || s.stage1_5.length > MAX_STAGE1_5) {
    throw new ImageError('E_CORRUPT', `e2fs_stage1_5 is ${s.stage1_5.length} bytes; a stage 1.5 is between 1 KiB and 24 KiB`, { structure: 'e2fs_stage1_5' });
  }
  compat(s.stage1_5, SECTOR + STAGE2_SECTOR2.VER_MAJ, 'e2fs_stage1_5', 'e2fs_stage1_5');
  if (s.stage1_5[SECTOR + STAGE2_SECTOR2.STAGE2_ID] === 0) {
    throw new ImageError('E_CORRUPT', 'e2fs_stage1_5 has stage2_id 0: it is a stage2, not a stage 1.5', { structure: 'e2fs_stage1_5', offset: SECTOR + STAGE2_SECTOR2.STAGE2_ID });
  }
  if (s.stage2) {
    if (s.stage2.length < 2 * SECTOR) throw new ImageError('E_CORRUPT', `stage2 is only ${s.stage2.length} bytes`, { structure: 'stage2' });
    if (s.stage2[SECTOR + STAGE2_SECTOR2.STAGE2_ID] !== 0) {
      throw new ImageError('E_CORRUPT', 'stage2 has a non-zero stage2_id: it is a stage 1.5', { structure: 'stage2', offset: SECTOR + STAGE2_SECTOR2.STAGE2_ID });
    }
  }
}

/** Sectors the stage 1.5 occupies when embedded after the MBR. */
export function embedSectors(stage1_5: Uint8Array): number {
  return Math.ceil(stage1_5.length / SECTOR);
}

/**
 * Can this e2fs_stage1_5 read the filesystem? Vanilla GRUB 0.97 hard-codes 128-byte inodes
 * and knows no extents; Debian's 0.97-74+ reads 256-byte inodes and ext4 (extents, 64bit,
 * flex_bg). The extent-capable builds carry the extent header magic 0xF30A in their code,
 * which is how they are told apart.
 */
export function checkFilesystemSupport(stage1_5: Uint8Array, fs: { inodeSize: number; features: readonly string[] }): void {
  const extents = Buffer.from(stage1_5).includes(Buffer.from([0x0a, 0xf3]));
  if (extents) return;
  if (fs.features.includes('extent')) {
    throw new ImageError('E_UNSUPPORTED', 'these GRUB 0.97 stage files cannot read a filesystem with extents (ext4); use stage files from Debian grub-legacy >= 0.97-74 (--grub-dir)', { structure: 'e2fs_stage1_5' });
  }
  if (fs.inodeSize !== 128) {
    throw new ImageError('E_UNSUPPORTED', `these GRUB 0.97 stage files read only 128-byte inodes and the filesystem has ${fs.inodeSize}-byte inodes; use stage files from Debian grub-legacy >= 0.97-30 (--grub-dir)`, { structure: 'e2fs_stage1_5' });
  }
}
