import { ImageError } from '@amitrans/block';
import { COMPAT, INCOMPAT, RO_COMPAT, featureNames } from './features.js';
import { STATE_ERROR, STATE_VALID, blockSizeOf, inodeSizeOf, type Superblock } from './superblock.js';

export type ExtType = 'ext2' | 'ext3' | 'ext4';

/** What `amitrans info` shows about an ext filesystem; every field matches `dumpe2fs -h`. */
export interface ExtFacts {
  type: ExtType;
  /** s_volume_name; '' when unset (dumpe2fs prints "<none>"). */
  label: string;
  /** s_uuid, lowercase 8-4-4-4-12. */
  uuid: string;
  blockSize: number;
  inodeSize: number;
  blocksTotal: number;
  blocksFree: number;
  inodesTotal: number;
  inodesFree: number;
  /** "clean" | "not clean", plus " with errors" when the error bit is set, as dumpe2fs prints it. */
  state: string;
  /** Feature names in dumpe2fs's order. */
  features: string[];
}

/*
 * libblkid's rule (superblocks/ext.c): a feature outside these masks is one ext2/ext3 code
 * does not understand, which makes the filesystem ext4.
 */
const EXT3_RO_COMPAT_SUPP = RO_COMPAT.SPARSE_SUPER | RO_COMPAT.LARGE_FILE | RO_COMPAT.BTREE_DIR;
const EXT3_INCOMPAT_SUPP = INCOMPAT.FILETYPE | INCOMPAT.RECOVER | INCOMPAT.META_BG;

/**
 * ext2, ext3 or ext4 as blkid names it (on a kernel that has all three drivers): ext4 when
 * any ro_compat/incompat feature is beyond ext3's set (extents, 64bit, flex_bg, huge_file,
 * dir_nlink, extra_isize, metadata_csum, ...), else ext3 when it has a journal, else ext2.
 * An external journal device (journal_dev) is not a filesystem: blkid calls it "jbd".
 */
export function extType(sb: Superblock): ExtType {
  if ((sb.s_feature_incompat & INCOMPAT.JOURNAL_DEV) !== 0) {
    throw new ImageError('E_UNSUPPORTED', 'this is an external ext3/4 journal device (jbd), not a filesystem',
      { structure: 'ext superblock', offset: 1024 + 0x60 });
  }
  const beyondExt3 = (sb.s_feature_ro_compat & ~EXT3_RO_COMPAT_SUPP) !== 0
    || (sb.s_feature_incompat & ~EXT3_INCOMPAT_SUPP) !== 0;
  if (beyondExt3) return 'ext4';
  return (sb.s_feature_compat & COMPAT.HAS_JOURNAL) !== 0 ? 'ext3' : 'ext2';
}

/** e2p's print_fs_state. */
export function stateText(state: number): string {
  return `${(state & STATE_VALID) !== 0 ? 'clean' : 'not clean'}${(state & STATE_ERROR) !== 0 ? ' with errors' : ''}`;
}

export function uuidText(bytes: Uint8Array): string {
  const h = Buffer.from(bytes).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function extFacts(sb: Superblock): ExtFacts {
  return {
    type: extType(sb),
    label: sb.s_volume_name,
    uuid: uuidText(sb.s_uuid),
    blockSize: blockSizeOf(sb),
    inodeSize: inodeSizeOf(sb),
    blocksTotal: sb.s_blocks_count,
    blocksFree: sb.s_free_blocks_count,
    inodesTotal: sb.s_inodes_count,
    inodesFree: sb.s_free_inodes_count,
    state: stateText(sb.s_state),
    features: featureNames(sb.s_feature_compat, sb.s_feature_incompat, sb.s_feature_ro_compat),
  };
}
