import { ImageError, type BlockDevice } from '@amitrans/block';
import { INCOMPAT } from './features.js';
import { SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, parseSuperblock, type Superblock } from './superblock.js';

/** Read and check the superblock of the filesystem that starts at byte 0 of `device`. */
export async function readSuperblock(device: BlockDevice): Promise<Superblock> {
  if (device.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) {
    throw new ImageError('E_TRUNCATED', `a ${device.size}-byte device cannot hold an ext superblock (it ends at byte 2048)`,
      { structure: 'ext superblock', offset: SUPERBLOCK_OFFSET });
  }
  const bytes = new Uint8Array(SUPERBLOCK_SIZE);
  await device.read(bytes, SUPERBLOCK_OFFSET);
  return parseSuperblock(bytes, { deviceSize: device.size });
}

/**
 * Format detection: is there an ext2/3/4 filesystem in these first 2048 (or more) bytes?
 * Magic 0xEF53 at byte 1080, fields that make sense, a valid checksum when metadata_csum
 * is on, and not an external journal device. Never throws.
 */
export function probeExt(head: Uint8Array): boolean {
  if (head.length < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) return false;
  if (head[SUPERBLOCK_OFFSET + 0x38] !== 0x53 || head[SUPERBLOCK_OFFSET + 0x39] !== 0xef) return false;
  try {
    const sb = parseSuperblock(head.subarray(SUPERBLOCK_OFFSET, SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE));
    return (sb.s_feature_incompat & INCOMPAT.JOURNAL_DEV) === 0;
  } catch (err) {
    if (err instanceof ImageError) return false;
    throw err;
  }
}
