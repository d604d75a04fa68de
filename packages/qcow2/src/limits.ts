import { ImageError } from '@amitrans/block';

/** QEMU refuses to open a qcow2 image whose L1 table is over 32 MiB ("L1 size too big"). */
export const MAX_L1_BYTES = 32 * 1024 * 1024;

/**
 * The largest virtual size a qcow2 image with `clusterBits` clusters can have and still be
 * opened by QEMU: one L1 entry maps cluster_size / 8 clusters, and the L1 table is at most
 * 32 MiB. qemu-img create refuses beyond it ("The image size is too large for file format
 * 'qcow2'"); refusing here keeps a header's claim from becoming an image nothing can read.
 */
export function maxQcow2Size(clusterBits: number): number {
  const clusterSize = 2 ** clusterBits;
  return Math.min(Number.MAX_SAFE_INTEGER, (MAX_L1_BYTES / 8) * clusterSize * (clusterSize / 8));
}

/** Refuse a disk of `size` bytes that a qcow2 image with these clusters cannot represent. */
export function checkQcow2Size(size: number, clusterBits: number): void {
  const max = maxQcow2Size(clusterBits);
  if (size > max) {
    throw new ImageError('E_TOO_LARGE',
      `a ${size}-byte disk is too large for qcow2 with ${2 ** clusterBits}-byte clusters (at most ${max} bytes: QEMU's 32 MiB L1 limit); try a larger cluster_size`,
      { structure: 'qcow2 header', offset: 24 });
  }
}
