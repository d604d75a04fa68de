export { vhdDriver } from './driver.js';
export { openVhd, locateFooter, FixedVhdDevice, DynamicVhdDevice, MAX_BLOCK_SIZE, MAX_BAT_ENTRIES, type LocatedFooter, type VhdSubformat } from './reader.js';
export { writeVhd, planVhdSize, WRITE_BLOCK_SIZE, type VhdWriteResult, type VhdSizePlan } from './writer.js';
export { probeVhd } from './probe.js';
export { parseVhdOptions, VHD_WRITE_OPTIONS, type VhdWriteSettings } from './options.js';
export {
  parseFooter, serializeFooter, footerVirtualSize, DiskType, FOOTER_SIZE, FOOTER_COOKIE, NO_OFFSET, VHD_EPOCH, type VhdFooter,
} from './footer.js';
export { parseDynamicHeader, serializeDynamicHeader, DYNAMIC_HEADER_SIZE, type DynamicHeader } from './dynamicHeader.js';
export { parseBat, serializeBat, batBytes, bitmapBytes, UNUSED } from './bat.js';
export {
  geometryForSectors, geometryCovering, geometrySectors, isMaxGeometry, MAX_GEOMETRY, MAX_VHD_SIZE, type Geometry,
} from './geometry.js';
export { vhdChecksum } from './checksum.js';
