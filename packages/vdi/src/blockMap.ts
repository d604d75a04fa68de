import { view } from '@amitrans/block';

/**
 * The block map: one little-endian u32 per block of the virtual disk, the index of the
 * data block that holds it, or one of two sentinels.
 */
export const BLOCK_FREE = 0xffffffff;
export const BLOCK_ZERO = 0xfffffffe;

export function parseBlockMap(buf: Uint8Array, entries: number): Uint32Array {
  const v = view(buf);
  const map = new Uint32Array(entries);
  for (let i = 0; i < entries; i++) map[i] = v.getUint32(i * 4, true);
  return map;
}

export function serializeBlockMap(map: Uint32Array): Uint8Array {
  const buf = new Uint8Array(map.length * 4);
  const v = view(buf);
  for (let i = 0; i < map.length; i++) v.setUint32(i * 4, map[i] ?? BLOCK_FREE, true);
  return buf;
}
