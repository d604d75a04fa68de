export { ovaDriver, openOvaDisk, tarDriver } from './driver.js';
export { openOva, digestMember, type OpenOvaOptions, type OvaArchive, type OvaDisk } from './reader.js';
export { writeOva, ovaSettings, OVA_WRITE_OPTIONS, type OvaWriteSettings } from './writer.js';
export { readTarEntries, checkMemberName, type TarEntry } from './archive.js';
export { parseTarHeader, probeTar, serializeTarHeader, parsePaxRecords, USTAR_MAX_SIZE, type TarHeader, type TarEntrySpec } from './tar.js';
export {
  parseOvf,
  serializeOvf,
  disksInOrder,
  applianceHardware,
  allocationUnitBytes,
  RESOURCE_TYPE,
  VMDK_STREAM_OPTIMIZED,
  type OvfDescriptor,
  type OvfDisk,
  type OvfFile,
  type OvfItem,
  type OvfSpec,
  type OvfVersion,
  type OvfVirtualSystem,
  type ControllerKind,
  type NicKind,
} from './ovf.js';
export { parseManifest, serializeManifest, type ManifestLine, type ManifestAlgorithm } from './manifest.js';
export { ovfOsType, type OvfOsType } from './ostype.js';
export { parseXml, type XmlElement } from './xml.js';
export { OvaError, isOvaError, type OvaRefusal } from './errors.js';
