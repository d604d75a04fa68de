export {
  parseSuperblock,
  superblockChecksum,
  blockSizeOf,
  inodeSizeOf,
  groupCountOf,
  EXT_MAGIC,
  SUPERBLOCK_OFFSET,
  SUPERBLOCK_SIZE,
  type Superblock,
  type ParseSuperblockOptions,
} from './superblock.js';
export { COMPAT, INCOMPAT, RO_COMPAT, featureNames } from './features.js';
export { extFacts, extType, stateText, uuidText, type ExtFacts, type ExtType } from './facts.js';
export { readSuperblock, probeExt } from './probe.js';
export { ExtFs, type ExtStat, type ExtFileType, type ExtFsOpenOptions, type CreateOptions } from './extfs.js';
export { ExtFsError } from './errors.js';
