export { detectContent, detectDevice, detectFile, probeDrivers, readHeadTail, type Content, type Detection } from './detect.js';
export { drivers, driverByName } from './drivers.js';
export { imageInfo, type FilesystemInfo, type ImageInfo, type PartitionInfo } from './info.js';
export { openImage, describe, type OpenedImage, type OpenOptions } from './open.js';
export { convert, formatFromName, writableDrivers, writerByName, type ConvertOptions, type ConvertResult } from './convert.js';
export { rawDriver, writeRaw } from './raw.js';
export { decompressToTemp, decompressStream, sevenZipPath, type TempImage } from './decompress.js';
export { sniffCompression, sniffTar, type Compression } from './sniff.js';
export { inspectImage, findRoot, type ImageInspection, type InspectOptions, type RootFilesystem } from './inspect.js';
