export { detectContent, detectDevice, detectFile, probeDrivers, readHeadTail, type Content, type Detection } from './detect.js';
export { drivers, driverByName } from './drivers.js';
export { imageInfo, type FilesystemInfo, type ImageInfo, type PartitionInfo } from './info.js';
export { openImage, describe, type OpenedImage } from './open.js';
export { sniffCompression, sniffTar, type Compression } from './sniff.js';
