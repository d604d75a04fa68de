/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum ext4's metadata_csum
 * uses. node:zlib only offers the IEEE polynomial, so this is a small table-driven version.
 *
 * ext4 calls the raw update function: seed ~0 in, no final inversion out. `crc32cUpdate`
 * is exactly that; the conventional CRC-32C of a buffer is `~crc32cUpdate(~0, buf)`.
 */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32cUpdate(crc: number, bytes: Uint8Array): number {
  let c = crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}
