export { readInitrd, type ReadInitrdOptions } from './reader.js';
export { sniffSegment, type Sniffed } from './magic.js';
export { sourceFromBlockDevice, sourceFromBytes, type InitrdSource } from './source.js';
export {
  DEFAULT_LIMITS,
  detectFlavour,
  initScriptModules,
  listFileModules,
  moduleName,
  modulesDepModules,
  normaliseMemberName,
  type InitrdArchive,
  type InitrdCompression,
  type InitrdContents,
  type InitrdEntry,
  type InitrdFlavour,
  type InitrdLimits,
  type InitrdModule,
  type InitrdSegment,
  type ModuleList,
  type ModuleListKind,
} from './contents.js';
export type { EntryType } from './cpio.js';
