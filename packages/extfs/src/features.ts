/**
 * Feature flags of the ext superblock, with the names e2fsprogs' libe2p prints
 * (`dumpe2fs -h` "Filesystem features:", `tune2fs -O`). A bit with no name prints as
 * FEATURE_C<n> / FEATURE_I<n> / FEATURE_R<n>, exactly as libe2p does.
 */

/** s_feature_compat: an implementation that does not know the bit may still write. */
export const COMPAT = {
  DIR_PREALLOC: 0x0001,
  IMAGIC_INODES: 0x0002,
  HAS_JOURNAL: 0x0004,
  EXT_ATTR: 0x0008,
  RESIZE_INODE: 0x0010,
  DIR_INDEX: 0x0020,
  LAZY_BG: 0x0040,
  EXCLUDE_BITMAP: 0x0100,
  SPARSE_SUPER2: 0x0200,
  FAST_COMMIT: 0x0400,
  STABLE_INODES: 0x0800,
  ORPHAN_FILE: 0x1000,
} as const;

/** s_feature_incompat: an implementation that does not know the bit must not mount. */
export const INCOMPAT = {
  COMPRESSION: 0x0001,
  FILETYPE: 0x0002,
  RECOVER: 0x0004,
  JOURNAL_DEV: 0x0008,
  META_BG: 0x0010,
  EXTENTS: 0x0040,
  BIT64: 0x0080,
  MMP: 0x0100,
  FLEX_BG: 0x0200,
  EA_INODE: 0x0400,
  DIRDATA: 0x1000,
  CSUM_SEED: 0x2000,
  LARGEDIR: 0x4000,
  INLINE_DATA: 0x8000,
  ENCRYPT: 0x10000,
  CASEFOLD: 0x20000,
} as const;

/** s_feature_ro_compat: an implementation that does not know the bit may only read. */
export const RO_COMPAT = {
  SPARSE_SUPER: 0x0001,
  LARGE_FILE: 0x0002,
  BTREE_DIR: 0x0004,
  HUGE_FILE: 0x0008,
  GDT_CSUM: 0x0010,
  DIR_NLINK: 0x0020,
  EXTRA_ISIZE: 0x0040,
  QUOTA: 0x0100,
  BIGALLOC: 0x0200,
  METADATA_CSUM: 0x0400,
  REPLICA: 0x0800,
  READONLY: 0x1000,
  PROJECT: 0x2000,
  SHARED_BLOCKS: 0x4000,
  VERITY: 0x8000,
  ORPHAN_PRESENT: 0x10000,
} as const;

const COMPAT_NAMES: Readonly<Record<number, string>> = {
  0x0001: 'dir_prealloc',
  0x0002: 'imagic_inodes',
  0x0004: 'has_journal',
  0x0008: 'ext_attr',
  0x0010: 'resize_inode',
  0x0020: 'dir_index',
  0x0040: 'lazy_bg',
  0x0100: 'snapshot_bitmap',
  0x0200: 'sparse_super2',
  0x0400: 'fast_commit',
  0x0800: 'stable_inodes',
  0x1000: 'orphan_file',
};

const INCOMPAT_NAMES: Readonly<Record<number, string>> = {
  0x0001: 'compression',
  0x0002: 'filetype',
  0x0004: 'needs_recovery',
  0x0008: 'journal_dev',
  0x0010: 'meta_bg',
  0x0040: 'extent',
  0x0080: '64bit',
  0x0100: 'mmp',
  0x0200: 'flex_bg',
  0x0400: 'ea_inode',
  0x1000: 'dirdata',
  0x2000: 'metadata_csum_seed',
  0x4000: 'large_dir',
  0x8000: 'inline_data',
  0x10000: 'encrypt',
  0x20000: 'casefold',
};

const RO_COMPAT_NAMES: Readonly<Record<number, string>> = {
  0x0001: 'sparse_super',
  0x0002: 'large_file',
  0x0008: 'huge_file',
  0x0010: 'uninit_bg',
  0x0020: 'dir_nlink',
  0x0040: 'extra_isize',
  0x0100: 'quota',
  0x0200: 'bigalloc',
  0x0400: 'metadata_csum',
  0x0800: 'replica',
  0x1000: 'read-only',
  0x2000: 'project',
  0x4000: 'shared_blocks',
  0x8000: 'verity',
  0x10000: 'orphan_present',
};

function namesOf(mask: number, table: Readonly<Record<number, string>>, letter: string): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    const m = 2 ** bit;
    if (Math.floor(mask / m) % 2 === 1) out.push(table[m] ?? `FEATURE_${letter}${bit}`);
  }
  return out;
}

/**
 * Feature names in dumpe2fs's order: compat, then incompat, then ro_compat, each by
 * ascending bit.
 */
export function featureNames(compat: number, incompat: number, roCompat: number): string[] {
  return [
    ...namesOf(compat, COMPAT_NAMES, 'C'),
    ...namesOf(incompat, INCOMPAT_NAMES, 'I'),
    ...namesOf(roCompat, RO_COMPAT_NAMES, 'R'),
  ];
}
