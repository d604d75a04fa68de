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
export { writeNewcArchive, type NewcMember } from './cpiowriter.js';
export { readKmodIndex, writeKmodIndex, type IndexEntry, type IndexValue } from './kmodindex.js';
export { closure, depmodFor, parseModulesDep, parseSoftdeps, type DepLine, type DepmodTexts, type DepmodOutput } from './depmod.js';
export { chooseSegmentCompression, compressSegment, zstdStored, SEGMENT_WRITERS, type SegmentCompression } from './encoders.js';
export {
  INJECTABLE_FLAVOURS,
  InitrdInjectError,
  appendSegment,
  injectionArchive,
  injectionMembers,
  nashInsertInsmods,
  planInjection,
  type InjectPlan,
  type InjectRequest,
  type InjectedModule,
} from './inject.js';
export { chooseRewriteCompression, rewriteInitrd, InitrdRewriteError, type RewriteCompression, type RewriteOptions, type RewriteResult } from './rewrite.js';
