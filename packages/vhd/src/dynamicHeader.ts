import { ImageError, setU64be, u64be, view } from '@amitrans/block';
import { checkVhdStructure, vhdChecksum } from './checksum.js';

/**
 * The dynamic disk header (1024 bytes, big-endian, at footer.dataOffset): where the block
 * allocation table is and how big a block is. Parent fields matter only to differencing
 * disks, which amitrans does not open, so they are written as zeros and not parsed.
 */
export const DYNAMIC_HEADER_SIZE = 1024;
export const DYNAMIC_HEADER_COOKIE = 'cxsparse';
const CHECKSUM_AT = 36;
const STRUCTURE = 'VHD dynamic header';

export interface DynamicHeader {
  readonly tableOffset: number;
  readonly headerVersion: number;
  readonly maxTableEntries: number;
  readonly blockSize: number;
}

export function parseDynamicHeader(buf: Uint8Array, at = 0): DynamicHeader {
  const b = checkVhdStructure(buf, at, { size: DYNAMIC_HEADER_SIZE, cookie: DYNAMIC_HEADER_COOKIE, checksumAt: CHECKSUM_AT, structure: STRUCTURE, what: 'header' });
  const v = view(b);
  let tableOffset: number;
  try {
    tableOffset = u64be(b, 16, STRUCTURE, 'table offset');
  } catch (err) {
    throw err instanceof ImageError ? err.shifted(at) : err;
  }
  return {
    tableOffset,
    headerVersion: v.getUint32(24, false),
    maxTableEntries: v.getUint32(28, false),
    blockSize: v.getUint32(32, false),
  };
}

export function serializeDynamicHeader(h: DynamicHeader): Uint8Array {
  const b = new Uint8Array(DYNAMIC_HEADER_SIZE);
  const v = view(b);
  b.set(Buffer.from(DYNAMIC_HEADER_COOKIE, 'latin1'), 0);
  // The spec calls data offset "unused, 0xFFFFFFFF"; Microsoft's tools expect all 64 bits set.
  v.setBigUint64(8, 0xffffffffffffffffn, false);
  setU64be(b, 16, h.tableOffset);
  v.setUint32(24, h.headerVersion, false);
  v.setUint32(28, h.maxTableEntries, false);
  v.setUint32(32, h.blockSize, false);
  v.setUint32(CHECKSUM_AT, vhdChecksum(b, CHECKSUM_AT), false);
  return b;
}
