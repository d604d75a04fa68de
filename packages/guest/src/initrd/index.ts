export { readInitrd, type ReadInitrdOptions } from './reader.js';
export { sniffSegment, type Sniffed } from './magic.js';
export { sourceFromBlockDevice, sourceFromBytes, type InitrdSource } from './source.js';
export {
  DEFAULT_INITRD_LIMITS,
  initScriptModules,
  listFileModules,
  modulesDepModules,
  summariseInitrd,
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
export type { EntryType as InitrdEntryType } from './cpio.js';
