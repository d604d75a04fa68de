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
