import { ImageError, view } from '@amitrans/block';

/**
 * SparseExtentHeader (VMware Virtual Disk Format 1.1, "hosted sparse extent"), little-endian,
 * 512 bytes at sector 0; streamOptimized files repeat it as a footer.
 */
export interface SparseExtentHeader {
  version: number;
  flags: number;
  /** Virtual size in sectors. */
  capacity: number;
  /** Sectors per grain. */
  grainSize: number;
  descriptorOffset: number;
  descriptorSize: number;
  numGTEsPerGT: number;
  rgdOffset: number;
  /** Sector of the grain directory; GD_AT_END when the footer holds the real value. */
  gdOffset: number;
  overHead: number;
  uncleanShutdown: boolean;
  compressAlgorithm: number;
}

export const SPARSE_MAGIC = 0x564d444b; // "KDMV" read little-endian
export const COWD_MAGIC = 0x44574f43; // "COWD": the ESX 2.x / VMDK3 format
export const SECTOR = 512;
/** gdOffset of a stream whose grain directory is at the end (read the footer). */
export const GD_AT_END = -1;

export const FLAG_NEWLINE_TEST = 1 << 0;
export const FLAG_REDUNDANT_GD = 1 << 1;
export const FLAG_ZEROED_GTE = 1 << 2;
export const FLAG_COMPRESSED = 1 << 16;
export const FLAG_MARKERS = 1 << 17;

export const COMPRESSION_NONE = 0;
export const COMPRESSION_DEFLATE = 1;

/** Grain sizes we accept: a power of two from 8 sectors (4 KiB) to 2048 sectors (1 MiB). */
const MIN_GRAIN = 8;
const MAX_GRAIN = 2048;
const MAX_GTES = 65536;

const STRUCT = 'VMDK sparse extent header';

function u64(dv: DataView, at: number, field: string, allowAtEnd = false): number {
  const v = dv.getBigUint64(at, true);
  if (allowAtEnd && v === 0xffffffffffffffffn) return GD_AT_END;
  if (v > BigInt(Number.MAX_SAFE_INTEGER) / 512n) {
    throw new ImageError('E_TOO_LARGE', `${field} ${v} sectors is beyond 2^53 bytes`, { structure: STRUCT, offset: at });
  }
  return Number(v);
}

export function parseHeader(buf: Uint8Array, at = 0): SparseExtentHeader {
  const where = (offset: number) => ({ structure: STRUCT, offset: at + offset });
  if (buf.length < SECTOR) throw new ImageError('E_TRUNCATED', 'file is shorter than a VMDK header', where(0));
  const dv = view(buf);
  const magic = dv.getUint32(0, true);
  if (magic === COWD_MAGIC) throw new ImageError('E_UNSUPPORTED', 'VMDK3 (COWD) sparse extents are not supported', where(0));
  if (magic !== SPARSE_MAGIC) throw new ImageError('E_BAD_MAGIC', 'not a VMDK sparse extent (magic is not KDMV)', where(0));
  const h: SparseExtentHeader = {
    version: dv.getUint32(4, true),
    flags: dv.getUint32(8, true),
    capacity: u64(dv, 12, 'capacity'),
    grainSize: u64(dv, 20, 'grainSize'),
    descriptorOffset: u64(dv, 28, 'descriptorOffset'),
    descriptorSize: u64(dv, 36, 'descriptorSize'),
    numGTEsPerGT: dv.getUint32(44, true),
    rgdOffset: u64(dv, 48, 'rgdOffset'),
    gdOffset: u64(dv, 56, 'gdOffset', true),
    overHead: u64(dv, 64, 'overHead'),
    uncleanShutdown: buf[72] !== 0,
    compressAlgorithm: dv.getUint16(77, true),
  };
  if (h.version < 1 || h.version > 3) throw new ImageError('E_UNSUPPORTED', `VMDK sparse version ${h.version} (1, 2 and 3 are known)`, where(4));
  if (h.flags & FLAG_NEWLINE_TEST && (buf[73] !== 0x0a || buf[74] !== 0x20 || buf[75] !== 0x0d || buf[76] !== 0x0a)) {
    throw new ImageError('E_CORRUPT', 'the newline test bytes are damaged (was the file copied in text mode?)', where(73));
  }
  if (h.grainSize < MIN_GRAIN || h.grainSize > MAX_GRAIN || (h.grainSize & (h.grainSize - 1)) !== 0) {
    throw new ImageError('E_CORRUPT', `grainSize ${h.grainSize} is not a power of two from ${MIN_GRAIN} to ${MAX_GRAIN} sectors`, where(20));
  }
  if (h.numGTEsPerGT < 1 || h.numGTEsPerGT > MAX_GTES) {
    throw new ImageError('E_CORRUPT', `numGTEsPerGT ${h.numGTEsPerGT} is outside 1..${MAX_GTES}`, where(44));
  }
  if (h.flags & FLAG_COMPRESSED && h.compressAlgorithm !== COMPRESSION_DEFLATE) {
    throw new ImageError('E_UNSUPPORTED', `compressAlgorithm ${h.compressAlgorithm} (only 1, deflate, is defined)`, where(77));
  }
  return h;
}

export function serializeHeader(h: SparseExtentHeader): Uint8Array {
  const buf = new Uint8Array(SECTOR);
  const dv = view(buf);
  dv.setUint32(0, SPARSE_MAGIC, true);
  dv.setUint32(4, h.version, true);
  dv.setUint32(8, h.flags, true);
  dv.setBigUint64(12, BigInt(h.capacity), true);
  dv.setBigUint64(20, BigInt(h.grainSize), true);
  dv.setBigUint64(28, BigInt(h.descriptorOffset), true);
  dv.setBigUint64(36, BigInt(h.descriptorSize), true);
  dv.setUint32(44, h.numGTEsPerGT, true);
  dv.setBigUint64(48, BigInt(h.rgdOffset), true);
  dv.setBigUint64(56, h.gdOffset === GD_AT_END ? 0xffffffffffffffffn : BigInt(h.gdOffset), true);
  dv.setBigUint64(64, BigInt(h.overHead), true);
  buf[72] = h.uncleanShutdown ? 1 : 0;
  buf.set([0x0a, 0x20, 0x0d, 0x0a], 73);
  dv.setUint16(77, h.compressAlgorithm, true);
  return buf;
}
