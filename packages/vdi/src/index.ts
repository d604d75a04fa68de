export { vdiDriver } from './driver.js';
export { openVdi, VdiDevice, MAX_BLOCK_SIZE, MAX_MAP_ENTRIES, type VdiSubformat } from './reader.js';
export { writeVdi, planVdiLayout, WRITE_BLOCK_SIZE, DATA_ALIGN, type VdiWriteResult, type VdiLayout } from './writer.js';
export { probeVdi } from './probe.js';
export { parseVdiOptions, VDI_WRITE_OPTIONS, type VdiWriteSettings } from './options.js';
export {
  parseVdiHeader, serializeVdiHeader, ImageType, VDI_SIGNATURE, VDI_VERSION_1_1, HEADER_TEXT, HEADER_SIZE_V1, HEADER_SIZE_V1PLUS,
  type VdiHeader, type VdiGeometry,
} from './header.js';
export { parseBlockMap, serializeBlockMap, BLOCK_FREE, BLOCK_ZERO } from './blockMap.js';
export { uuidToRtuuid, rtuuidToString } from './uuid.js';
