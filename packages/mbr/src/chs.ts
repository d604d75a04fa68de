import { ImageError } from '@amitrans/block';

/**
 * Cylinder/head/sector addresses as the MBR stores them (3 bytes): head; sector in bits 0-5
 * with cylinder bits 8-9 in bits 6-7; cylinder bits 0-7. Only old BIOSes and old boot
 * loaders read these, but they still do, so a written table carries CHS that matches the
 * LBA fields under the usual translated geometry.
 */
export interface Chs {
  readonly cylinder: number;
  readonly head: number;
  readonly sector: number;
}

export interface Geometry {
  /** Heads per cylinder (1-255). */
  readonly heads: number;
  /** Sectors per track (1-63). */
  readonly sectorsPerTrack: number;
}

/** The geometry every BIOS with LBA translation reports for a large disk, and what sfdisk assumes for a file. */
export const DEFAULT_GEOMETRY: Geometry = { heads: 255, sectorsPerTrack: 63 };

/** The largest cylinder the 10-bit field can hold. */
export const MAX_CHS_CYLINDER = 1023;

/**
 * What an address beyond cylinder 1023 is written as: 1023/254/63, bytes FE FF FF. The head
 * is 254 (the highest head of a 255-head geometry) whatever the geometry, as fdisk writes it.
 */
export const CHS_SENTINEL: Chs = { cylinder: 1023, head: 254, sector: 63 };

export const CHS_SIZE = 3;

export function parseChs(buf: Uint8Array, at: number): Chs {
  const head = buf[at] ?? 0;
  const b1 = buf[at + 1] ?? 0;
  const b2 = buf[at + 2] ?? 0;
  return { head, sector: b1 & 0x3f, cylinder: ((b1 & 0xc0) << 2) | b2 };
}

/** Write `chs` as 3 bytes at `at`. Fields are masked to their widths; `chsFromLba` never exceeds them. */
export function serializeChs(chs: Chs, buf: Uint8Array, at: number): void {
  buf[at] = chs.head & 0xff;
  buf[at + 1] = (chs.sector & 0x3f) | ((chs.cylinder >> 2) & 0xc0);
  buf[at + 2] = chs.cylinder & 0xff;
}

/** The CHS address of sector `lba`, or the 1023/254/63 sentinel when it lies past cylinder 1023. */
export function chsFromLba(lba: number, geometry: Geometry = DEFAULT_GEOMETRY): Chs {
  checkGeometry(geometry);
  const perCylinder = geometry.heads * geometry.sectorsPerTrack;
  const cylinder = Math.floor(lba / perCylinder);
  if (cylinder > MAX_CHS_CYLINDER) return CHS_SENTINEL;
  const inCylinder = lba % perCylinder;
  return {
    cylinder,
    head: Math.floor(inCylinder / geometry.sectorsPerTrack),
    sector: (inCylinder % geometry.sectorsPerTrack) + 1,
  };
}

/**
 * The LBA a CHS address names under `geometry`, or undefined when the address is not a
 * real one (sector 0, head or sector beyond the geometry). The sentinel decodes to its
 * literal address: callers wanting "past the CHS limit" should compare with CHS_SENTINEL.
 */
export function lbaFromChs(chs: Chs, geometry: Geometry = DEFAULT_GEOMETRY): number | undefined {
  checkGeometry(geometry);
  if (chs.sector < 1 || chs.sector > geometry.sectorsPerTrack || chs.head >= geometry.heads) return undefined;
  return (chs.cylinder * geometry.heads + chs.head) * geometry.sectorsPerTrack + chs.sector - 1;
}

export function isChsSentinel(chs: Chs): boolean {
  return chs.cylinder === CHS_SENTINEL.cylinder && chs.head === CHS_SENTINEL.head && chs.sector === CHS_SENTINEL.sector;
}

function checkGeometry(g: Geometry): void {
  if (!Number.isInteger(g.heads) || g.heads < 1 || g.heads > 255 ||
      !Number.isInteger(g.sectorsPerTrack) || g.sectorsPerTrack < 1 || g.sectorsPerTrack > 63) {
    throw new ImageError('E_OUT_OF_RANGE',
      `CHS geometry ${g.heads} heads x ${g.sectorsPerTrack} sectors is outside 1-255 x 1-63`, { structure: 'CHS geometry' });
  }
}
