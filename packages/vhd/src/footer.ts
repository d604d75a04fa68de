import { ImageError, setU64be, u64be, view } from '@amitrans/block';
import { checkVhdStructure, vhdChecksum } from './checksum.js';
import { type Geometry, SECTOR, geometrySectors, isMaxGeometry } from './geometry.js';

/**
 * The hard disk footer (512 bytes, big-endian): at the end of every VHD, and copied to
 * offset 0 of dynamic disks. Pre-2004 Virtual PC wrote it one byte short (511 bytes).
 */
export const FOOTER_SIZE = 512;
export const FOOTER_COOKIE = 'conectix';
const CHECKSUM_AT = 64;

export const DiskType = { fixed: 2, dynamic: 3, differencing: 4 } as const;

/** 0xFFFFFFFFFFFFFFFF: "no data offset" (fixed disks; the spec says 32 bits, tools want 64). */
export const NO_OFFSET = -1;

export interface VhdFooter {
  readonly features: number;
  readonly formatVersion: number;
  /** Byte offset of the dynamic header, or NO_OFFSET. */
  readonly dataOffset: number;
  /** Seconds since 2000-01-01 00:00:00 UTC. */
  readonly timestamp: number;
  /** Four characters: `vpc `, `win `, `qemu`, `qem2`, `d2v `, `tap\0`, `wa\0\0`, ... */
  readonly creatorApplication: string;
  readonly creatorVersion: number;
  readonly creatorHostOs: number;
  /** Informational; undefined when it is beyond 2^53 (we never rely on it). */
  readonly originalSize: number | undefined;
  readonly currentSize: number;
  readonly geometry: Geometry;
  readonly diskType: number;
  readonly uniqueId: Uint8Array;
  readonly savedState: number;
}

const STRUCTURE = 'VHD footer';

/**
 * Parse a footer from 512 bytes (a 511-byte footer is passed padded with one zero byte,
 * which changes neither the fields nor the checksum). `at` is the footer's file offset.
 */
export function parseFooter(buf: Uint8Array, at = 0): VhdFooter {
  const b = checkVhdStructure(buf, at, { size: FOOTER_SIZE, cookie: FOOTER_COOKIE, checksumAt: CHECKSUM_AT, structure: STRUCTURE, what: 'footer' });
  const v = view(b);
  const rawDataOffset = v.getBigUint64(16, false);
  const rawOriginal = v.getBigUint64(40, false);
  return {
    features: v.getUint32(8, false),
    formatVersion: v.getUint32(12, false),
    dataOffset: rawDataOffset === 0xffffffffffffffffn || rawDataOffset === 0xffffffffn ? NO_OFFSET
      : u64be(b, 16, STRUCTURE, 'data offset'),
    timestamp: v.getUint32(24, false),
    creatorApplication: Buffer.from(b.subarray(28, 32)).toString('latin1'),
    creatorVersion: v.getUint32(32, false),
    creatorHostOs: v.getUint32(36, false),
    originalSize: rawOriginal > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(rawOriginal),
    currentSize: sizeField(b, at),
    geometry: { cylinders: v.getUint16(56, false), heads: b[58] ?? 0, sectorsPerTrack: b[59] ?? 0 },
    diskType: v.getUint32(60, false),
    uniqueId: b.slice(68, 84),
    savedState: b[84] ?? 0,
  };
}

function sizeField(b: Uint8Array, at: number): number {
  try {
    return u64be(b, 48, STRUCTURE, 'current size');
  } catch (err) {
    throw err instanceof ImageError ? err.shifted(at) : err;
  }
}

export function serializeFooter(f: VhdFooter): Uint8Array {
  const b = new Uint8Array(FOOTER_SIZE);
  const v = view(b);
  b.set(Buffer.from(FOOTER_COOKIE, 'latin1'), 0);
  v.setUint32(8, f.features, false);
  v.setUint32(12, f.formatVersion, false);
  if (f.dataOffset === NO_OFFSET) v.setBigUint64(16, 0xffffffffffffffffn, false);
  else setU64be(b, 16, f.dataOffset);
  v.setUint32(24, f.timestamp >>> 0, false);
  b.set(Buffer.from(f.creatorApplication.padEnd(4, '\0').slice(0, 4), 'latin1'), 28);
  v.setUint32(32, f.creatorVersion, false);
  v.setUint32(36, f.creatorHostOs, false);
  setU64be(b, 40, f.originalSize ?? f.currentSize);
  setU64be(b, 48, f.currentSize);
  v.setUint16(56, f.geometry.cylinders, false);
  b[58] = f.geometry.heads;
  b[59] = f.geometry.sectorsPerTrack;
  v.setUint32(60, f.diskType, false);
  b.set(f.uniqueId.subarray(0, 16), 68);
  b[84] = f.savedState;
  v.setUint32(CHECKSUM_AT, vhdChecksum(b, CHECKSUM_AT), false);
  return b;
}

/** Creators whose footers QEMU (since 2025) sizes by CHS; everyone else means current_size. */
const CHS_CREATORS = new Set(['vpc ', 'qemu']);

/**
 * The virtual size a footer describes. Virtual PC and QEMU's default writer size disks by
 * CHS; every other creator (Hyper-V `win `, `qem2`, Disk2vhd, XenServer, Azure `wa\0\0`)
 * means current_size. The maximum geometry always means current_size, because CHS cannot
 * express the size.
 */
export function footerVirtualSize(f: VhdFooter): number {
  if (CHS_CREATORS.has(f.creatorApplication) && !isMaxGeometry(f.geometry)) {
    return geometrySectors(f.geometry) * SECTOR;
  }
  return f.currentSize;
}

/** Seconds between the Unix epoch and the VHD epoch (2000-01-01 00:00:00 UTC). */
export const VHD_EPOCH = 946684800;
