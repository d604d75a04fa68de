import { ImageError, asciiz, view } from '@amitrans/block';

/**
 * The VHD checksum (footer and dynamic header): the one's complement of the sum of every
 * byte of the structure, taken with the checksum field itself as zero.
 */
export function vhdChecksum(structure: Uint8Array, checksumOffset: number): number {
  let sum = 0;
  for (let i = 0; i < structure.length; i++) {
    if (i >= checksumOffset && i < checksumOffset + 4) continue;
    sum = (sum + (structure[i] ?? 0)) >>> 0;
  }
  return ~sum >>> 0;
}

/**
 * The checks both VHD structures open with: `size` bytes present, the cookie, and the
 * checksum. `at` is the structure's file offset, for the error.
 */
export function checkVhdStructure(buf: Uint8Array, at: number, o: { size: number; cookie: string; checksumAt: number; structure: string; what: string }): Uint8Array {
  if (buf.length < o.size) {
    throw new ImageError('E_TRUNCATED', `${o.what} needs ${o.size} bytes, got ${buf.length}`, { structure: o.structure, offset: at });
  }
  const b = buf.subarray(0, o.size);
  if (asciiz(b, 0, 8) !== o.cookie) {
    throw new ImageError('E_BAD_MAGIC', `cookie is not "${o.cookie}"`, { structure: o.structure, offset: at });
  }
  const stored = view(b).getUint32(o.checksumAt, false);
  const computed = vhdChecksum(b, o.checksumAt);
  if (stored !== computed) {
    throw new ImageError('E_BAD_CHECKSUM',
      `checksum is 0x${stored.toString(16)}, the bytes sum to 0x${computed.toString(16)}`,
      { structure: o.structure, offset: at + o.checksumAt });
  }
  return b;
}
