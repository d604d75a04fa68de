import { crc32 as zlibCrc32 } from 'node:zlib';

/** CRC-32 (IEEE 802.3, as GPT uses) of `data`; node:zlib has it since Node 20.15. */
export function crc32(data: Uint8Array): number {
  return zlibCrc32(data) >>> 0;
}
