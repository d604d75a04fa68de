import { ImageError, asciiz, setU64le, u64le, view } from '@amitrans/block';

/**
 * The VDI pre-header and header v1.1 (little-endian), in the first 512 bytes. VirtualBox
 * writes the "v1plus" form (cbHeader 0x190, with LCHS geometry); QEMU writes 0x180.
 */
export const HEADER_BLOCK = 512;
export const VDI_SIGNATURE = 0xbeda107f;
export const VDI_VERSION_1_1 = 0x00010001;
export const HEADER_TEXT = '<<< Oracle VirtualBox Disk Image >>>\n';
/** The header proper starts after the 64-byte text, signature and version. */
export const HEADER_START = 0x48;
export const HEADER_SIZE_V1 = 0x180;
export const HEADER_SIZE_V1PLUS = 0x190;

export const ImageType = { normal: 1, fixed: 2, undo: 3, diff: 4 } as const;

export interface VdiGeometry {
  readonly cylinders: number;
  readonly heads: number;
  readonly sectors: number;
  readonly sectorSize: number;
}

export interface VdiHeader {
  readonly text: string;
  readonly version: number;
  readonly headerSize: number;
  readonly imageType: number;
  readonly flags: number;
  readonly comment: string;
  readonly offBlocks: number;
  readonly offData: number;
  readonly legacyGeometry: VdiGeometry;
  readonly diskSize: number;
  readonly blockSize: number;
  readonly blockExtra: number;
  readonly blocksInImage: number;
  readonly blocksAllocated: number;
  /** RTUUIDs, as stored (see uuid.ts). */
  readonly uuidCreate: Uint8Array;
  readonly uuidModify: Uint8Array;
  readonly uuidLinkage: Uint8Array;
  readonly uuidParentModify: Uint8Array;
  /** v1plus only. */
  readonly lchsGeometry: VdiGeometry | undefined;
}

const STRUCTURE = 'VDI header';

function geometryAt(v: DataView, at: number): VdiGeometry {
  return {
    cylinders: v.getUint32(at, true),
    heads: v.getUint32(at + 4, true),
    sectors: v.getUint32(at + 8, true),
    sectorSize: v.getUint32(at + 12, true),
  };
}

function setGeometry(v: DataView, at: number, g: VdiGeometry): void {
  v.setUint32(at, g.cylinders, true);
  v.setUint32(at + 4, g.heads, true);
  v.setUint32(at + 8, g.sectors, true);
  v.setUint32(at + 12, g.sectorSize, true);
}

export function parseVdiHeader(buf: Uint8Array): VdiHeader {
  if (buf.length < HEADER_START) {
    throw new ImageError('E_TRUNCATED', `the file is ${buf.length} bytes, shorter than a VDI pre-header`, { structure: STRUCTURE, offset: 0 });
  }
  const v = view(buf);
  if (v.getUint32(0x40, true) !== VDI_SIGNATURE) {
    throw new ImageError('E_BAD_MAGIC', 'signature is not 0xBEDA107F', { structure: STRUCTURE, offset: 0x40 });
  }
  const version = v.getUint32(0x44, true);
  if (version !== VDI_VERSION_1_1) {
    throw new ImageError('E_UNSUPPORTED', `version ${version >>> 16}.${version & 0xffff}; only 1.1 is supported`, { structure: STRUCTURE, offset: 0x44 });
  }
  if (buf.length < HEADER_BLOCK) {
    throw new ImageError('E_TRUNCATED', `the file is ${buf.length} bytes, shorter than a VDI header`, { structure: STRUCTURE, offset: 0 });
  }
  const headerSize = v.getUint32(0x48, true);
  if (headerSize !== HEADER_SIZE_V1 && headerSize !== HEADER_SIZE_V1PLUS) {
    throw new ImageError('E_UNSUPPORTED', `header size 0x${headerSize.toString(16)}; expected 0x180 or 0x190`, { structure: STRUCTURE, offset: 0x48 });
  }
  return {
    text: asciiz(buf, 0, 0x40),
    version,
    headerSize,
    imageType: v.getUint32(0x4c, true),
    flags: v.getUint32(0x50, true),
    comment: Buffer.from(buf.subarray(0x54, 0x154)).toString('utf8').replace(/\0.*$/s, ''),
    offBlocks: v.getUint32(0x154, true),
    offData: v.getUint32(0x158, true),
    legacyGeometry: geometryAt(v, 0x15c),
    diskSize: u64le(buf, 0x170, STRUCTURE, 'disk size'),
    blockSize: v.getUint32(0x178, true),
    blockExtra: v.getUint32(0x17c, true),
    blocksInImage: v.getUint32(0x180, true),
    blocksAllocated: v.getUint32(0x184, true),
    uuidCreate: buf.slice(0x188, 0x198),
    uuidModify: buf.slice(0x198, 0x1a8),
    uuidLinkage: buf.slice(0x1a8, 0x1b8),
    uuidParentModify: buf.slice(0x1b8, 0x1c8),
    lchsGeometry: headerSize >= HEADER_SIZE_V1PLUS ? geometryAt(v, 0x1c8) : undefined,
  };
}

export function serializeVdiHeader(h: VdiHeader): Uint8Array {
  const buf = new Uint8Array(HEADER_BLOCK);
  const v = view(buf);
  buf.set(Buffer.from(h.text, 'latin1').subarray(0, 0x40), 0);
  v.setUint32(0x40, VDI_SIGNATURE, true);
  v.setUint32(0x44, h.version, true);
  v.setUint32(0x48, h.headerSize, true);
  v.setUint32(0x4c, h.imageType, true);
  v.setUint32(0x50, h.flags, true);
  buf.set(Buffer.from(h.comment, 'utf8').subarray(0, 255), 0x54);
  v.setUint32(0x154, h.offBlocks, true);
  v.setUint32(0x158, h.offData, true);
  setGeometry(v, 0x15c, h.legacyGeometry);
  setU64le(buf, 0x170, h.diskSize);
  v.setUint32(0x178, h.blockSize, true);
  v.setUint32(0x17c, h.blockExtra, true);
  v.setUint32(0x180, h.blocksInImage, true);
  v.setUint32(0x184, h.blocksAllocated, true);
  buf.set(h.uuidCreate.subarray(0, 16), 0x188);
  buf.set(h.uuidModify.subarray(0, 16), 0x198);
  buf.set(h.uuidLinkage.subarray(0, 16), 0x1a8);
  buf.set(h.uuidParentModify.subarray(0, 16), 0x1b8);
  if (h.lchsGeometry && h.headerSize >= HEADER_SIZE_V1PLUS) setGeometry(v, 0x1c8, h.lchsGeometry);
  return buf;
}
