import { ImageError, view } from '@amitrans/block';

/** Bits 9..55 of an L1 or standard L2 entry: a host offset. */
const OFFSET_MASK = 0x00fffffffffffe00n;
export const COPIED = 1n << 63n;
export const COMPRESSED = 1n << 62n;
const ZERO_FLAG = 1n;
/** L1 bits that must be zero: 0..8 and 56..62. */
const L1_RESERVED = 0x7f000000000001ffn;
/** Standard L2 bits that must be zero: 1..8 and 56..61. */
const L2_RESERVED = 0x3f000000000001fen;

/** One cluster of the virtual disk as its L2 entry describes it. */
export type ClusterMapping =
  | { kind: 'unallocated' }
  | { kind: 'zero' }
  | { kind: 'data'; hostOffset: number }
  | { kind: 'compressed'; hostOffset: number; length: number };

/** The L2 table offsets of an L1 table (0 = no L2 table), checked against the file. */
export function parseL1(buf: Uint8Array, l1Offset: number, clusterSize: number, fileSize: number): Float64Array {
  const n = buf.length / 8;
  const out = new Float64Array(n);
  const dv = view(buf);
  for (let i = 0; i < n; i++) {
    const e = dv.getBigUint64(i * 8);
    const where = { structure: 'qcow2 L1 entry', offset: l1Offset + i * 8 };
    if (e & L1_RESERVED) throw new ImageError('E_CORRUPT', `L1 entry ${i} has reserved bits set`, where);
    const off = Number(e & OFFSET_MASK);
    if (off === 0) continue;
    if (off % clusterSize !== 0) throw new ImageError('E_CORRUPT', `L1 entry ${i}: L2 table offset ${off} is not cluster aligned`, where);
    if (off + clusterSize > fileSize) throw new ImageError('E_OUT_OF_RANGE', `L1 entry ${i}: L2 table at ${off} lies past the end of the ${fileSize}-byte file`, where);
    out[i] = off;
  }
  return out;
}

/**
 * Decode an L2 table once when it is loaded, so lookups are O(1) and every entry is known
 * to point inside the file. `forbidden` are host ranges no data may live in (the header
 * cluster, the L1 table, the L2 table itself): pointing there is a self-reference.
 */
export function parseL2(
  buf: Uint8Array,
  l2Offset: number,
  geometry: { clusterBits: number; version: number; fileSize: number },
  forbidden: readonly { offset: number; length: number }[],
): ClusterMapping[] {
  const clusterSize = 2 ** geometry.clusterBits;
  const dv = view(buf);
  const n = buf.length / 8;
  const out: ClusterMapping[] = new Array(n);
  // Compressed descriptor: x = 62 - (cluster_bits - 8) offset bits, then the sector count.
  const x = BigInt(62 - (geometry.clusterBits - 8));
  const cOffsetMask = (1n << x) - 1n;
  const cSectorsMask = (1n << (62n - x)) - 1n;
  for (let i = 0; i < n; i++) {
    const e = dv.getBigUint64(i * 8);
    const where = { structure: 'qcow2 L2 entry', offset: l2Offset + i * 8 };
    if (e & COMPRESSED) {
      const hostOffset = Number(e & cOffsetMask);
      const sectors = Number((e >> x) & cSectorsMask) + 1;
      const length = sectors * 512 - (hostOffset % 512);
      if (hostOffset >= geometry.fileSize) {
        throw new ImageError('E_OUT_OF_RANGE', `compressed cluster at ${hostOffset} lies past the end of the ${geometry.fileSize}-byte file`, where);
      }
      if (hostOffset < clusterSize) throw new ImageError('E_LOOP', `compressed cluster at ${hostOffset} overlaps the header`, where);
      out[i] = { kind: 'compressed', hostOffset, length };
      continue;
    }
    if (e & L2_RESERVED) throw new ImageError('E_CORRUPT', `L2 entry ${i} has reserved bits set`, where);
    const hostOffset = Number(e & OFFSET_MASK);
    if (geometry.version >= 3 && (e & ZERO_FLAG)) {
      out[i] = { kind: 'zero' };
      continue;
    }
    if (hostOffset === 0) {
      out[i] = { kind: 'unallocated' };
      continue;
    }
    if (hostOffset % clusterSize !== 0) throw new ImageError('E_CORRUPT', `L2 entry ${i}: data offset ${hostOffset} is not cluster aligned`, where);
    if (hostOffset >= geometry.fileSize) {
      throw new ImageError('E_OUT_OF_RANGE', `L2 entry ${i}: data cluster at ${hostOffset} lies past the end of the ${geometry.fileSize}-byte file`, where);
    }
    for (const f of forbidden) {
      if (hostOffset < f.offset + f.length && hostOffset + clusterSize > f.offset) {
        throw new ImageError('E_LOOP', `L2 entry ${i}: data cluster at ${hostOffset} overlaps qcow2 metadata at ${f.offset}`, where);
      }
    }
    out[i] = { kind: 'data', hostOffset };
  }
  return out;
}

/** An L2 entry for a standard cluster written once (bit 63: refcount is exactly 1). */
export function standardEntry(hostOffset: number): bigint {
  return BigInt(hostOffset) | COPIED;
}

/** An L2 entry for compressed data of `length` bytes at byte `hostOffset`. */
export function compressedEntry(hostOffset: number, length: number, clusterBits: number): bigint {
  const x = BigInt(62 - (clusterBits - 8));
  const additional = Math.floor((hostOffset + length - 1) / 512) - Math.floor(hostOffset / 512);
  return COMPRESSED | (BigInt(additional) << x) | BigInt(hostOffset);
}
