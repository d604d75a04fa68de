import { ImageError, u64be, view } from '@amitrans/block';

/** The qcow2 image header (docs/interop/qcow2.rst), big-endian, at byte 0 of the file. */
export interface Qcow2Header {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  /** Virtual disk size in bytes. */
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
}

export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
export const V2_HEADER_LENGTH = 72;
/** What QEMU writes for v3: 104 bytes of fields, the compression_type byte, padding to 8. */
export const V3_HEADER_LENGTH = 112;
export const MIN_CLUSTER_BITS = 9;
/** QEMU's MAX_CLUSTER_BITS: 2 MiB clusters. */
export const MAX_CLUSTER_BITS = 21;

export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_DATA_FILE = 1n << 2n;
export const INCOMPAT_COMPRESSION = 1n << 3n;
export const INCOMPAT_EXTL2 = 1n << 4n;

export const EXT_END = 0;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_NAMES = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_CRYPTO = 0x0537be77;
export const EXT_DATA_FILE = 0x44415441;

const STRUCT = 'qcow2 header';

/**
 * Parse and check the header. Features amitrans does not read (backing files, encryption,
 * external data files, extended L2, zstd) are E_UNSUPPORTED; contradictions are E_CORRUPT.
 */
export function parseHeader(buf: Uint8Array): Qcow2Header {
  if (buf.length < V2_HEADER_LENGTH) throw new ImageError('E_TRUNCATED', 'file is shorter than a qcow2 header', { structure: STRUCT, offset: 0 });
  const dv = view(buf);
  if (dv.getUint32(0) !== QCOW2_MAGIC) throw new ImageError('E_BAD_MAGIC', 'not a qcow2 image (magic is not QFI\\xfb)', { structure: STRUCT, offset: 0 });
  const version = dv.getUint32(4);
  if (version !== 2 && version !== 3) {
    throw new ImageError('E_UNSUPPORTED', `qcow2 version ${version} (only 2 and 3 are defined)`, { structure: STRUCT, offset: 4 });
  }
  const h: Qcow2Header = {
    version,
    backingFileOffset: u64be(buf, 8, STRUCT, 'backing_file_offset'),
    backingFileSize: dv.getUint32(16),
    clusterBits: dv.getUint32(20),
    size: u64be(buf, 24, STRUCT, 'size'),
    cryptMethod: dv.getUint32(32),
    l1Size: dv.getUint32(36),
    l1TableOffset: u64be(buf, 40, STRUCT, 'l1_table_offset'),
    refcountTableOffset: u64be(buf, 48, STRUCT, 'refcount_table_offset'),
    refcountTableClusters: dv.getUint32(56),
    nbSnapshots: dv.getUint32(60),
    snapshotsOffset: u64be(buf, 64, STRUCT, 'snapshots_offset'),
    incompatibleFeatures: 0n,
    compatibleFeatures: 0n,
    autoclearFeatures: 0n,
    refcountOrder: 4,
    headerLength: V2_HEADER_LENGTH,
    compressionType: 0,
  };
  if (version === 3) {
    if (buf.length < 104) throw new ImageError('E_TRUNCATED', 'file is shorter than a v3 qcow2 header', { structure: STRUCT, offset: 0 });
    h.incompatibleFeatures = dv.getBigUint64(72);
    h.compatibleFeatures = dv.getBigUint64(80);
    h.autoclearFeatures = dv.getBigUint64(88);
    h.refcountOrder = dv.getUint32(96);
    h.headerLength = dv.getUint32(100);
    if (h.headerLength < 104 || h.headerLength % 8 !== 0) {
      throw new ImageError('E_CORRUPT', `header_length ${h.headerLength} must be a multiple of 8 and at least 104`, { structure: STRUCT, offset: 100 });
    }
    if (h.headerLength > 104) {
      if (buf.length < 105) throw new ImageError('E_TRUNCATED', 'header ends before compression_type', { structure: STRUCT, offset: 104 });
      h.compressionType = buf[104]!;
    }
  }
  checkHeader(h);
  return h;
}

function checkHeader(h: Qcow2Header): void {
  if (h.clusterBits < MIN_CLUSTER_BITS || h.clusterBits > MAX_CLUSTER_BITS) {
    throw new ImageError('E_CORRUPT', `cluster_bits ${h.clusterBits} is outside ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS}`, { structure: STRUCT, offset: 20 });
  }
  const clusterSize = 2 ** h.clusterBits;
  if (h.headerLength > clusterSize) {
    throw new ImageError('E_CORRUPT', `header_length ${h.headerLength} is larger than a cluster`, { structure: STRUCT, offset: 100 });
  }
  if (h.refcountOrder > 6) throw new ImageError('E_CORRUPT', `refcount_order ${h.refcountOrder} is above 6`, { structure: STRUCT, offset: 96 });
  if (h.cryptMethod !== 0) throw new ImageError('E_UNSUPPORTED', `encrypted image (crypt_method ${h.cryptMethod})`, { structure: STRUCT, offset: 32 });
  if (h.backingFileOffset !== 0) {
    throw new ImageError('E_UNSUPPORTED', 'image has a backing file; convert the whole chain with qemu-img first', { structure: STRUCT, offset: 8 });
  }
  const known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;
  const unknown = h.incompatibleFeatures & ~known;
  if (unknown !== 0n) {
    throw new ImageError('E_UNSUPPORTED', `unknown incompatible feature bits 0x${unknown.toString(16)}`, { structure: STRUCT, offset: 72 });
  }
  if (h.incompatibleFeatures & INCOMPAT_DATA_FILE) throw new ImageError('E_UNSUPPORTED', 'image uses an external data file', { structure: STRUCT, offset: 72 });
  if (h.incompatibleFeatures & INCOMPAT_EXTL2) throw new ImageError('E_UNSUPPORTED', 'image uses extended L2 entries (subclusters)', { structure: STRUCT, offset: 72 });
  const hasTypeBit = (h.incompatibleFeatures & INCOMPAT_COMPRESSION) !== 0n;
  if (h.compressionType !== 0 && !hasTypeBit) {
    throw new ImageError('E_CORRUPT', `compression_type ${h.compressionType} without the compression-type feature bit`, { structure: STRUCT, offset: 104 });
  }
  if (h.compressionType === 1) throw new ImageError('E_UNSUPPORTED', 'zstd-compressed clusters', { structure: STRUCT, offset: 104 });
  if (h.compressionType > 1) throw new ImageError('E_CORRUPT', `unknown compression_type ${h.compressionType}`, { structure: STRUCT, offset: 104 });
  if (h.size % 512 !== 0 && h.size > Number.MAX_SAFE_INTEGER - 512) {
    throw new ImageError('E_TOO_LARGE', `size ${h.size} is too large`, { structure: STRUCT, offset: 24 });
  }
}

/** The dirty bit: refcounts may be stale, but the L1/L2 tables (all a reader needs) are valid. */
export function isDirty(h: Qcow2Header): boolean {
  return (h.incompatibleFeatures & INCOMPAT_DIRTY) !== 0n;
}

export function serializeHeader(h: Qcow2Header): Uint8Array {
  const buf = new Uint8Array(h.version === 2 ? V2_HEADER_LENGTH : h.headerLength);
  const dv = view(buf);
  dv.setUint32(0, QCOW2_MAGIC);
  dv.setUint32(4, h.version);
  dv.setBigUint64(8, BigInt(h.backingFileOffset));
  dv.setUint32(16, h.backingFileSize);
  dv.setUint32(20, h.clusterBits);
  dv.setBigUint64(24, BigInt(h.size));
  dv.setUint32(32, h.cryptMethod);
  dv.setUint32(36, h.l1Size);
  dv.setBigUint64(40, BigInt(h.l1TableOffset));
  dv.setBigUint64(48, BigInt(h.refcountTableOffset));
  dv.setUint32(56, h.refcountTableClusters);
  dv.setUint32(60, h.nbSnapshots);
  dv.setBigUint64(64, BigInt(h.snapshotsOffset));
  if (h.version === 3) {
    dv.setBigUint64(72, h.incompatibleFeatures);
    dv.setBigUint64(80, h.compatibleFeatures);
    dv.setBigUint64(88, h.autoclearFeatures);
    dv.setUint32(96, h.refcountOrder);
    dv.setUint32(100, h.headerLength);
    if (h.headerLength > 104) buf[104] = h.compressionType;
  }
  return buf;
}

export interface HeaderExtension {
  type: number;
  /** Where the extension's data starts in the file. */
  offset: number;
  data: Uint8Array;
}

/**
 * The extensions after the header, up to the end marker (type 0). They must fit in the first
 * cluster; `cluster0` is that cluster (or the file's start when shorter).
 */
export function parseExtensions(h: Qcow2Header, cluster0: Uint8Array): HeaderExtension[] {
  const out: HeaderExtension[] = [];
  const dv = view(cluster0);
  const limit = Math.min(cluster0.length, 2 ** h.clusterBits);
  let at = h.headerLength;
  while (true) {
    if (at + 8 > limit) {
      // v2 images written by old tools may end the header cluster without an end marker.
      if (h.version === 2) return out;
      throw new ImageError('E_CORRUPT', 'header extensions run past the first cluster', { structure: 'qcow2 header extension', offset: at });
    }
    const type = dv.getUint32(at);
    const length = dv.getUint32(at + 4);
    if (type === EXT_END) return out;
    const padded = Math.ceil(length / 8) * 8;
    if (at + 8 + padded > limit) {
      throw new ImageError('E_CORRUPT', `header extension 0x${type.toString(16)} of ${length} bytes runs past the first cluster`, { structure: 'qcow2 header extension', offset: at });
    }
    out.push({ type, offset: at + 8, data: cluster0.subarray(at + 8, at + 8 + length) });
    at += 8 + padded;
  }
}

/** The end-of-extensions marker: 8 zero bytes. */
export function serializeExtensionEnd(): Uint8Array {
  return new Uint8Array(8);
}
