import { view } from '@amitrans/block';

/**
 * The block allocation table: one big-endian u32 per block, the block's sector offset in
 * the file, or UNUSED. On disk it is padded with UNUSED entries to a whole sector.
 */
export const UNUSED = 0xffffffff;

export function parseBat(buf: Uint8Array, entries: number): Uint32Array {
  const v = view(buf);
  const bat = new Uint32Array(entries);
  for (let i = 0; i < entries; i++) bat[i] = v.getUint32(i * 4, false);
  return bat;
}

export function batBytes(entries: number): number {
  return Math.ceil((entries * 4) / 512) * 512;
}

export function serializeBat(bat: Uint32Array): Uint8Array {
  const buf = new Uint8Array(batBytes(bat.length)).fill(0xff);
  const v = view(buf);
  for (let i = 0; i < bat.length; i++) v.setUint32(i * 4, bat[i] ?? UNUSED, false);
  return buf;
}

/** Bytes of a block's sector bitmap: one bit per sector, padded to a whole sector. */
export function bitmapBytes(blockSize: number): number {
  return Math.ceil(blockSize / 512 / 8 / 512) * 512;
}
