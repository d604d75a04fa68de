export { vmdkDriver } from './driver.js';
export { openVmdk } from './open.js';
export { SparseExtentDevice } from './sparse.js';
export { VMDK_WRITE_OPTIONS, writeVmdk } from './writer.js';
export { parseHeader, serializeHeader, type SparseExtentHeader } from './header.js';
export { parseDescriptor, serializeDescriptor, type Descriptor } from './descriptor.js';
