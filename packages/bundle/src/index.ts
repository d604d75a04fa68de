export { bundleDevice, DEFAULT_PART_SIZE, EC2_BUNDLE_SIZE_LIMIT, type BundleOptions, type BundleResult } from './bundle.js';
export { unbundle, unwrapBundleKey, type PartSource, type UnbundleOptions, type UnbundleResult } from './unbundle.js';
export {
  manifestXml,
  ARCHITECTURES,
  IMAGE_TYPES,
  MANIFEST_VERSION,
  MAX_MANIFEST_BYTES,
  type BlockDeviceMapping,
  type ImageType,
  type Manifest,
  type ManifestFields,
  type ManifestPart,
  type ParsedManifest,
} from './manifest.js';
export { parseManifest, MAX_PARTS } from './manifest-parse.js';
export { certificateKey, privateKey, newBundleKey, signHex, verifyHex, unwrapHex, wrapHex, type BundleKey } from './keys.js';
export { PartSplitter, partName, type BundleDestination, type PartRecord, type PartWriter } from './parts.js';
export { DirectoryDestination } from './directory.js';
export { DirectorySource, SinkTarget, readManifestFile } from './local.js';
export { ParallelGzip, GZIP_BLOCK } from './gzip.js';
export { tarHeader, tarStreamLength, tarTailLength } from './tar.js';
export { TarExtractor, type ExtractTarget } from './untar.js';
export { parseXml, type XmlElement } from './xml.js';
export { BUNDLE_ACLS, MAX_S3_PART, S3Destination, S3PartSource, parseBundleUrl, readManifestS3, type BundleAcl, type S3DestinationOptions } from './s3.js';
