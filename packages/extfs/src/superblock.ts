import { ImageError, view } from '@amitrans/block';
import { crc32cUpdate } from './crc32c.js';
import { INCOMPAT, RO_COMPAT } from './features.js';

/**
 * The ext2/3/4 superblock: 1024 bytes at byte 1024 of the filesystem, little-endian,
 * laid out as the kernel's struct ext4_super_block. Field names follow that struct; the
 * `_lo`/`_hi` halves of 64-bit counts are already joined (the `_hi` half only counts
 * when the 64bit feature is on, as in libext2fs).
 */
export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;
export const EXT_MAGIC = 0xef53;
const STRUCTURE = 'ext superblock';

/** s_state bits. */
export const STATE_VALID = 0x0001;
export const STATE_ERROR = 0x0002;
export const STATE_ORPHAN = 0x0004;

/** s_checksum_type: the only one defined. */
export const CHECKSUM_CRC32C = 1;

/** s_rev_level: 0 = the original fixed layout (128-byte inodes, first inode 11). */
export const GOOD_OLD_REV = 0;
export const DYNAMIC_REV = 1;
export const GOOD_OLD_INODE_SIZE = 128;
export const GOOD_OLD_FIRST_INO = 11;

/** Largest s_log_block_size: 1024 << 6 = 64 KiB blocks. */
export const MAX_LOG_BLOCK_SIZE = 6;
/** Largest cluster (bigalloc), as in e2fsprogs: 2^29 bytes. */
const MAX_CLUSTER_LOG_SIZE = 29;

export interface Superblock {
  s_inodes_count: number;
  s_blocks_count: number;
  s_r_blocks_count: number;
  s_free_blocks_count: number;
  s_free_inodes_count: number;
  s_first_data_block: number;
  s_log_block_size: number;
  s_log_cluster_size: number;
  s_blocks_per_group: number;
  s_clusters_per_group: number;
  s_inodes_per_group: number;
  /** Seconds since the epoch, with the 8-bit `_hi` extension. */
  s_mtime: number;
  s_wtime: number;
  s_mnt_count: number;
  s_max_mnt_count: number;
  s_magic: number;
  s_state: number;
  s_errors: number;
  s_minor_rev_level: number;
  s_lastcheck: number;
  s_checkinterval: number;
  s_creator_os: number;
  s_rev_level: number;
  s_def_resuid: number;
  s_def_resgid: number;
  s_first_ino: number;
  s_inode_size: number;
  s_block_group_nr: number;
  s_feature_compat: number;
  s_feature_incompat: number;
  s_feature_ro_compat: number;
  s_uuid: Uint8Array;
  s_volume_name: string;
  s_last_mounted: string;
  s_reserved_gdt_blocks: number;
  s_journal_uuid: Uint8Array;
  s_journal_inum: number;
  s_journal_dev: number;
  s_last_orphan: number;
  s_def_hash_version: number;
  s_jnl_backup_type: number;
  s_desc_size: number;
  s_default_mount_opts: number;
  s_first_meta_bg: number;
  s_mkfs_time: number;
  s_min_extra_isize: number;
  s_want_extra_isize: number;
  s_flags: number;
  s_log_groups_per_flex: number;
  s_checksum_type: number;
  s_kbytes_written: number;
  s_checksum_seed: number;
  s_checksum: number;
}

export interface ParseSuperblockOptions {
  /** Size in bytes of the device holding the filesystem; a filesystem larger than it is E_TRUNCATED. */
  deviceSize?: number;
  /** Check s_checksum when metadata_csum is on (default true), as the kernel and blkid do. */
  verifyChecksum?: boolean;
}

/** Offsets of the fields inside the 1024-byte superblock (struct ext4_super_block). */
const F = {
  s_inodes_count: 0x00,
  s_blocks_count_lo: 0x04,
  s_r_blocks_count_lo: 0x08,
  s_free_blocks_count_lo: 0x0c,
  s_free_inodes_count: 0x10,
  s_first_data_block: 0x14,
  s_log_block_size: 0x18,
  s_log_cluster_size: 0x1c,
  s_blocks_per_group: 0x20,
  s_clusters_per_group: 0x24,
  s_inodes_per_group: 0x28,
  s_mtime: 0x2c,
  s_wtime: 0x30,
  s_mnt_count: 0x34,
  s_max_mnt_count: 0x36,
  s_magic: 0x38,
  s_state: 0x3a,
  s_errors: 0x3c,
  s_minor_rev_level: 0x3e,
  s_lastcheck: 0x40,
  s_checkinterval: 0x44,
  s_creator_os: 0x48,
  s_rev_level: 0x4c,
  s_def_resuid: 0x50,
  s_def_resgid: 0x52,
  s_first_ino: 0x54,
  s_inode_size: 0x58,
  s_block_group_nr: 0x5a,
  s_feature_compat: 0x5c,
  s_feature_incompat: 0x60,
  s_feature_ro_compat: 0x64,
  s_uuid: 0x68,
  s_volume_name: 0x78,
  s_last_mounted: 0x88,
  s_reserved_gdt_blocks: 0xce,
  s_journal_uuid: 0xd0,
  s_journal_inum: 0xe0,
  s_journal_dev: 0xe4,
  s_last_orphan: 0xe8,
  s_def_hash_version: 0xfc,
  s_jnl_backup_type: 0xfd,
  s_desc_size: 0xfe,
  s_default_mount_opts: 0x100,
  s_first_meta_bg: 0x104,
  s_mkfs_time: 0x108,
  s_blocks_count_hi: 0x150,
  s_r_blocks_count_hi: 0x154,
  s_free_blocks_count_hi: 0x158,
  s_min_extra_isize: 0x15c,
  s_want_extra_isize: 0x15e,
  s_flags: 0x160,
  s_log_groups_per_flex: 0x174,
  s_checksum_type: 0x175,
  s_kbytes_written: 0x178,
  s_checksum_seed: 0x270,
  s_wtime_hi: 0x274,
  s_mtime_hi: 0x275,
  s_mkfs_time_hi: 0x276,
  s_lastcheck_hi: 0x277,
  s_checksum: 0x3fc,
} as const;

export const SUPERBLOCK_FIELD_OFFSETS: Readonly<Record<string, number>> = F;

function fail(code: 'E_CORRUPT' | 'E_TRUNCATED' | 'E_TOO_LARGE' | 'E_UNSUPPORTED' | 'E_BAD_MAGIC' | 'E_BAD_CHECKSUM',
  detail: string, field: number): never {
  throw new ImageError(code, detail, { structure: STRUCTURE, offset: SUPERBLOCK_OFFSET + field });
}

/** A count made of a 32-bit low half and, with the 64bit feature, a 32-bit high half. */
function count64(lo: number, hi: number, is64: boolean, name: string, field: number): number {
  if (!is64 || hi === 0) return lo;
  const v = BigInt(hi) * 0x1_0000_0000n + BigInt(lo);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('E_TOO_LARGE', `${name} ${v} is beyond 2^53`, field);
  return Number(v);
}

/** A NUL-padded text field; blkid reads labels as UTF-8. */
function textz(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return new TextDecoder('utf-8').decode(nul < 0 ? bytes : bytes.subarray(0, nul));
}

/** The checksum ext4 stores in s_checksum: crc32c over everything before it, seed ~0, not inverted. */
export function superblockChecksum(bytes: Uint8Array): number {
  return crc32cUpdate(0xffffffff, bytes.subarray(0, F.s_checksum));
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/**
 * Decode and sanity-check a superblock. `bytes` starts at the superblock (byte 1024 of the
 * filesystem); error offsets are given relative to the start of the filesystem.
 */
export function parseSuperblock(bytes: Uint8Array, options: ParseSuperblockOptions = {}): Superblock {
  if (bytes.length < SUPERBLOCK_SIZE) {
    fail('E_TRUNCATED', `superblock needs ${SUPERBLOCK_SIZE} bytes, only ${bytes.length} available`, 0);
  }
  const dv = view(bytes);
  const u8 = (at: number): number => dv.getUint8(at);
  const u16 = (at: number): number => dv.getUint16(at, true);
  const s16 = (at: number): number => dv.getInt16(at, true);
  const u32 = (at: number): number => dv.getUint32(at, true);
  const time = (lo: number, hi: number): number => u32(lo) + u8(hi) * 0x1_0000_0000;

  const s_magic = u16(F.s_magic);
  if (s_magic !== EXT_MAGIC) fail('E_BAD_MAGIC', `magic 0x${s_magic.toString(16)} is not 0xef53`, F.s_magic);

  const s_feature_incompat = u32(F.s_feature_incompat);
  const s_feature_ro_compat = u32(F.s_feature_ro_compat);
  const is64 = (s_feature_incompat & INCOMPAT.BIT64) !== 0;
  const bigalloc = (s_feature_ro_compat & RO_COMPAT.BIGALLOC) !== 0;

  const sb: Superblock = {
    s_inodes_count: u32(F.s_inodes_count),
    s_blocks_count: count64(u32(F.s_blocks_count_lo), u32(F.s_blocks_count_hi), is64, 's_blocks_count', F.s_blocks_count_hi),
    s_r_blocks_count: count64(u32(F.s_r_blocks_count_lo), u32(F.s_r_blocks_count_hi), is64, 's_r_blocks_count', F.s_r_blocks_count_hi),
    s_free_blocks_count: count64(u32(F.s_free_blocks_count_lo), u32(F.s_free_blocks_count_hi), is64,
      's_free_blocks_count', F.s_free_blocks_count_hi),
    s_free_inodes_count: u32(F.s_free_inodes_count),
    s_first_data_block: u32(F.s_first_data_block),
    s_log_block_size: u32(F.s_log_block_size),
    s_log_cluster_size: u32(F.s_log_cluster_size),
    s_blocks_per_group: u32(F.s_blocks_per_group),
    s_clusters_per_group: u32(F.s_clusters_per_group),
    s_inodes_per_group: u32(F.s_inodes_per_group),
    s_mtime: time(F.s_mtime, F.s_mtime_hi),
    s_wtime: time(F.s_wtime, F.s_wtime_hi),
    s_mnt_count: u16(F.s_mnt_count),
    s_max_mnt_count: s16(F.s_max_mnt_count),
    s_magic,
    s_state: u16(F.s_state),
    s_errors: u16(F.s_errors),
    s_minor_rev_level: u16(F.s_minor_rev_level),
    s_lastcheck: time(F.s_lastcheck, F.s_lastcheck_hi),
    s_checkinterval: u32(F.s_checkinterval),
    s_creator_os: u32(F.s_creator_os),
    s_rev_level: u32(F.s_rev_level),
    s_def_resuid: u16(F.s_def_resuid),
    s_def_resgid: u16(F.s_def_resgid),
    s_first_ino: u32(F.s_first_ino),
    s_inode_size: u16(F.s_inode_size),
    s_block_group_nr: u16(F.s_block_group_nr),
    s_feature_compat: u32(F.s_feature_compat),
    s_feature_incompat,
    s_feature_ro_compat,
    s_uuid: bytes.slice(F.s_uuid, F.s_uuid + 16),
    s_volume_name: textz(bytes.subarray(F.s_volume_name, F.s_volume_name + 16)),
    s_last_mounted: textz(bytes.subarray(F.s_last_mounted, F.s_last_mounted + 64)),
    s_reserved_gdt_blocks: u16(F.s_reserved_gdt_blocks),
    s_journal_uuid: bytes.slice(F.s_journal_uuid, F.s_journal_uuid + 16),
    s_journal_inum: u32(F.s_journal_inum),
    s_journal_dev: u32(F.s_journal_dev),
    s_last_orphan: u32(F.s_last_orphan),
    s_def_hash_version: u8(F.s_def_hash_version),
    s_jnl_backup_type: u8(F.s_jnl_backup_type),
    s_desc_size: u16(F.s_desc_size),
    s_default_mount_opts: u32(F.s_default_mount_opts),
    s_first_meta_bg: u32(F.s_first_meta_bg),
    s_mkfs_time: time(F.s_mkfs_time, F.s_mkfs_time_hi),
    s_min_extra_isize: u16(F.s_min_extra_isize),
    s_want_extra_isize: u16(F.s_want_extra_isize),
    s_flags: u32(F.s_flags),
    s_log_groups_per_flex: u8(F.s_log_groups_per_flex),
    s_checksum_type: u8(F.s_checksum_type),
    s_kbytes_written: Number(dv.getBigUint64(F.s_kbytes_written, true) & 0x1f_ffff_ffff_ffffn),
    s_checksum_seed: u32(F.s_checksum_seed),
    s_checksum: u32(F.s_checksum),
  };

  if (sb.s_rev_level > DYNAMIC_REV) {
    fail('E_UNSUPPORTED', `revision level ${sb.s_rev_level} is newer than the dynamic revision (1)`, F.s_rev_level);
  }
  if (sb.s_log_block_size > MAX_LOG_BLOCK_SIZE) {
    fail('E_CORRUPT', `block size 1024 << ${sb.s_log_block_size} is beyond 64 KiB`, F.s_log_block_size);
  }
  const blockSize = 1024 << sb.s_log_block_size;
  const bitsPerBitmap = blockSize * 8;
  if (bigalloc) {
    if (sb.s_log_cluster_size < sb.s_log_block_size || sb.s_log_cluster_size + 10 > MAX_CLUSTER_LOG_SIZE) {
      fail('E_CORRUPT', `cluster size 1024 << ${sb.s_log_cluster_size} does not fit block size ${blockSize}`, F.s_log_cluster_size);
    }
    if (sb.s_clusters_per_group === 0 || sb.s_clusters_per_group > bitsPerBitmap) {
      fail('E_CORRUPT', `${sb.s_clusters_per_group} clusters per group do not fit one ${blockSize}-byte bitmap`, F.s_clusters_per_group);
    }
    const ratio = 2 ** (sb.s_log_cluster_size - sb.s_log_block_size);
    if (sb.s_blocks_per_group !== sb.s_clusters_per_group * ratio) {
      fail('E_CORRUPT', `${sb.s_blocks_per_group} blocks per group is not ${sb.s_clusters_per_group} clusters of ${ratio} blocks`,
        F.s_blocks_per_group);
    }
  } else if (sb.s_blocks_per_group === 0 || sb.s_blocks_per_group > bitsPerBitmap) {
    fail('E_CORRUPT', `${sb.s_blocks_per_group} blocks per group do not fit one ${blockSize}-byte bitmap`, F.s_blocks_per_group);
  }
  if (sb.s_inodes_per_group === 0 || sb.s_inodes_per_group > bitsPerBitmap) {
    fail('E_CORRUPT', `${sb.s_inodes_per_group} inodes per group do not fit one ${blockSize}-byte bitmap`, F.s_inodes_per_group);
  }
  if (sb.s_rev_level >= DYNAMIC_REV) {
    const size = sb.s_inode_size;
    if (size < GOOD_OLD_INODE_SIZE || size > blockSize || !isPowerOfTwo(size)) {
      fail('E_CORRUPT', `inode size ${size} is not a power of two between 128 and the block size ${blockSize}`, F.s_inode_size);
    }
    if (sb.s_first_ino < GOOD_OLD_FIRST_INO) {
      fail('E_CORRUPT', `first non-reserved inode ${sb.s_first_ino} is below ${GOOD_OLD_FIRST_INO}`, F.s_first_ino);
    }
  }
  if (sb.s_blocks_count === 0 || sb.s_first_data_block >= sb.s_blocks_count) {
    fail('E_CORRUPT', `first data block ${sb.s_first_data_block} is not inside the ${sb.s_blocks_count} blocks`,
      F.s_first_data_block);
  }
  const groups = Math.ceil((sb.s_blocks_count - sb.s_first_data_block) / sb.s_blocks_per_group);
  if (groups * sb.s_inodes_per_group !== sb.s_inodes_count) {
    fail('E_CORRUPT', `${sb.s_inodes_count} inodes is not ${groups} groups of ${sb.s_inodes_per_group}`, F.s_inodes_count);
  }
  const firstIno = sb.s_rev_level === GOOD_OLD_REV ? GOOD_OLD_FIRST_INO : sb.s_first_ino;
  if (firstIno > sb.s_inodes_count) {
    fail('E_CORRUPT', `first non-reserved inode ${firstIno} is past the ${sb.s_inodes_count} inodes`, F.s_first_ino);
  }
  if (sb.s_r_blocks_count > sb.s_blocks_count) {
    fail('E_CORRUPT', `${sb.s_r_blocks_count} reserved blocks exceed the ${sb.s_blocks_count} blocks`, F.s_r_blocks_count_lo);
  }
  if (sb.s_free_blocks_count > sb.s_blocks_count) {
    fail('E_CORRUPT', `${sb.s_free_blocks_count} free blocks exceed the ${sb.s_blocks_count} blocks`, F.s_free_blocks_count_lo);
  }
  if (sb.s_free_inodes_count > sb.s_inodes_count) {
    fail('E_CORRUPT', `${sb.s_free_inodes_count} free inodes exceed the ${sb.s_inodes_count} inodes`, F.s_free_inodes_count);
  }
  if (is64) {
    const d = sb.s_desc_size;
    if (d < 64 || d > 1024 || !isPowerOfTwo(d)) {
      fail('E_CORRUPT', `group descriptor size ${d} is not a power of two between 64 and 1024`, F.s_desc_size);
    }
  }
  if ((sb.s_feature_ro_compat & RO_COMPAT.METADATA_CSUM) !== 0) {
    if (sb.s_checksum_type !== CHECKSUM_CRC32C) {
      fail('E_UNSUPPORTED', `checksum type ${sb.s_checksum_type} is not crc32c (1)`, F.s_checksum_type);
    }
    if (options.verifyChecksum !== false) {
      const want = superblockChecksum(bytes);
      if (want !== sb.s_checksum) {
        fail('E_BAD_CHECKSUM', `checksum 0x${sb.s_checksum.toString(16)} should be 0x${want.toString(16)}`, F.s_checksum);
      }
    }
  }
  const bytesTotal = sb.s_blocks_count * blockSize;
  if (!Number.isSafeInteger(bytesTotal)) {
    fail('E_TOO_LARGE', `${sb.s_blocks_count} blocks of ${blockSize} bytes is beyond 2^53 bytes`, F.s_blocks_count_lo);
  }
  if (options.deviceSize !== undefined && bytesTotal > options.deviceSize) {
    fail('E_TRUNCATED', `the filesystem spans ${bytesTotal} bytes but the device holds only ${options.deviceSize}`,
      F.s_blocks_count_lo);
  }
  return sb;
}

export function blockSizeOf(sb: Superblock): number {
  return 1024 << sb.s_log_block_size;
}

export function inodeSizeOf(sb: Superblock): number {
  return sb.s_rev_level === GOOD_OLD_REV ? GOOD_OLD_INODE_SIZE : sb.s_inode_size;
}

export function groupCountOf(sb: Superblock): number {
  return Math.ceil((sb.s_blocks_count - sb.s_first_data_block) / sb.s_blocks_per_group);
}
