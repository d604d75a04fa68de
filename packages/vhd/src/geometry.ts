/**
 * The CHS geometry of the VHD specification's appendix. Virtual PC (and QEMU for the
 * creators `vpc ` and `qemu`) size a disk by cylinders × heads × sectors-per-track, so a
 * writer that wants those readers to see the whole disk must pick a size that this
 * algorithm can represent exactly.
 */
export interface Geometry {
  readonly cylinders: number;
  readonly heads: number;
  readonly sectorsPerTrack: number;
}

export const SECTOR = 512;
/** 65535 / 16 / 255: the largest geometry; a footer carrying it means "use current_size". */
export const MAX_GEOMETRY: Geometry = { cylinders: 65535, heads: 16, sectorsPerTrack: 255 };
export const MAX_GEOMETRY_SECTORS = 65535 * 16 * 255;
/** The largest VHD (QEMU, Hyper-V): 0xff000000 sectors = 2040 GiB. */
export const MAX_VHD_SIZE = 0xff000000 * SECTOR;

export function geometrySectors(g: Geometry): number {
  return g.cylinders * g.heads * g.sectorsPerTrack;
}

export function isMaxGeometry(g: Geometry): boolean {
  return g.cylinders === 65535 && g.heads === 16 && g.sectorsPerTrack === 255;
}

/** The specification's algorithm: a geometry whose product is at most `sectors`. */
export function geometryForSectors(sectors: number): Geometry {
  const total = Math.min(Math.max(0, Math.floor(sectors)), MAX_GEOMETRY_SECTORS);
  let spt: number;
  let heads: number;
  let cylTimesHeads: number;
  if (total >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cylTimesHeads = Math.floor(total / spt);
  } else {
    spt = 17;
    cylTimesHeads = Math.floor(total / spt);
    heads = Math.max(4, Math.floor((cylTimesHeads + 1023) / 1024));
    if (cylTimesHeads >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cylTimesHeads = Math.floor(total / spt);
    }
    if (cylTimesHeads >= heads * 1024) {
      spt = 63;
      heads = 16;
      cylTimesHeads = Math.floor(total / spt);
    }
  }
  return { cylinders: Math.floor(cylTimesHeads / heads), heads, sectorsPerTrack: spt };
}

/**
 * The smallest CHS-representable geometry covering `sectors` (QEMU's default on create):
 * the product may exceed the request, which is why qemu-made VHDs are rarely MiB-aligned.
 * Sizes beyond the largest geometry get the maximum geometry.
 */
export function geometryCovering(sectors: number): Geometry {
  if (sectors >= MAX_GEOMETRY_SECTORS) return MAX_GEOMETRY;
  // The product grows in steps of at most heads × spt (16 × 255) sectors, so this ends quickly.
  for (let extra = 0; extra <= 16 * 255 * 2; extra++) {
    const g = geometryForSectors(sectors + extra);
    if (geometrySectors(g) >= sectors) return g;
  }
  return MAX_GEOMETRY;
}
