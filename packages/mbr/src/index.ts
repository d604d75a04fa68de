export { readPartitionTable, type ReadPartitionTableOptions } from './read.js';
export { createMbr, serializeMbr, type CreateMbrOptions, type CreatedMbr, type MbrPartitionSpec, type MbrTableSpec } from './write.js';
export {
  SECTOR_SIZE,
  type GptPartition,
  type GptTable,
  type MbrPartition,
  type MbrTable,
  type NoTable,
  type Partition,
  type PartitionTable,
} from './table.js';
export {
  CHS_SENTINEL,
  DEFAULT_GEOMETRY,
  chsFromLba,
  isChsSentinel,
  lbaFromChs,
  parseChs,
  serializeChs,
  type Chs,
  type Geometry,
} from './chs.js';
export { parseMbrSector, serializeMbrSector, type MbrSector, type MbrSectorFields } from './mbr-sector.js';
export { parsePartitionEntry, serializePartitionEntry, isEmptyEntry, type PartitionEntry } from './partition-entry.js';
export { EXTENDED_TYPES, TYPE_GPT_PROTECTIVE, TYPE_LINUX, isExtendedType, partitionTypeName } from './partition-types.js';
export { DEFAULT_MAX_LOGICALS } from './ebr.js';
export { gptTypeName } from './gpt-types.js';
