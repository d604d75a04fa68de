import { ImageError } from '@amitrans/block';

/**
 * QEMU refuses to open a sparse extent whose grain directory has more than 32 Mi entries
 * ("L1 size too big"); with the 64 KiB grains and 512-entry grain tables we write, that is
 * 1 PiB. Beyond it qemu-img would reject our output, and the writer would hold one 4-byte
 * directory entry per 32 MiB of disk (2 GiB of memory for an 8 PiB descriptor extent).
 */
const MAX_GD_ENTRIES = 32 * 1024 * 1024;

/** Refuse a capacity (sectors) our sparse and streamOptimized VMDKs cannot represent. */
export function checkVmdkCapacity(capacity: number, grainSectors: number, gtes: number): void {
  const max = MAX_GD_ENTRIES * gtes * grainSectors;
  if (capacity > max) {
    throw new ImageError('E_TOO_LARGE',
      `a ${capacity * 512}-byte disk is too large for a sparse VMDK (at most ${max * 512} bytes: QEMU's limit of ${MAX_GD_ENTRIES} grain directory entries)`,
      { structure: 'VMDK sparse header', offset: 12 });
  }
}
