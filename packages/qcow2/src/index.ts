export { qcow2Driver } from './driver.js';
export { Qcow2Device } from './reader.js';
export { writeQcow2 } from './writer.js';
export { parseHeader, serializeHeader, type Qcow2Header } from './header.js';
