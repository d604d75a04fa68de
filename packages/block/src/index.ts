export { ImageError, isImageError, inContextFile, inFile, type ErrorCode, type ErrorPlace } from './errors.js';
export {
  BaseDevice,
  checkRange,
  checkSize,
  wholeRange,
  MAX_SIZE,
  type BlockDevice,
  type Extent,
  type ExtentKind,
  type Range,
} from './device.js';
export { ExtentRun, collectExtents, clipExtents, extentTotals, mergeExtents, readAt, readData, MAX_READ_AT } from './extents.js';
export { FileDevice, readFully, writeError, writeFully, type FileDeviceOptions } from './file.js';
export { MAX_DATA_RANGES, MIN_HOLE_BYTES, seekDataRanges } from './holes.js';
export { MemoryDevice, ZeroDevice } from './memory.js';
export { SliceDevice } from './slice.js';
export { ConcatDevice } from './concat.js';
export { CowOverlay, type CowOverlayOptions } from './cow.js';
export { ZeroDetectDevice, type ZeroDetectOptions } from './zerodetect.js';
export { alignedBytes, asciiz, bytesEqual, isZero, isZeroAt, zeroRuns, setU64be, setU64le, u64be, u64le, view } from './bytes.js';
export { CoalescingSink, CountingSink, FileSink, ForwardingSink, MemorySink, StreamSink, abortAllSinksSync, type Sink } from './sink.js';
export { SpooledSink, type SpooledSinkOptions } from './spool.js';
export { readAhead, type ReadAheadOptions, type ReadPlan, type ReadWindow } from './readahead.js';
export { clusterRuns, clusterWindows, dataRanges, runTotal, unitWindows, type ClusterRun, type ClusterWindow, type ClusterWindowOptions } from './clusters.js';
export { copyToSink, type CopyOptions } from './copy.js';
export { appendUnits, deflateUnits, type AppendUnitsOptions } from './pipeline.js';
export { inflateUnit, readUnits, settleAll, TableCache, type CompressedPart, type UnitPlace, type UnitSource } from './unitread.js';
export { MAX_WRITE, WriteBehind, type PositionalSink } from './writebehind.js';
export { DeflatePool, OrderedQueue, limiter, type DeflateMode } from './deflate-pool.js';
export type { FormatDriver, OpenContext, ProbeInput, ProbeResult, ProgressOptions, WriteOptions, WriteResult } from './driver.js';
export { MaskedDevice } from './masked.js';
export { CachedDevice, type CachedDeviceOptions } from './cache.js';
export { checkInputType, checkOutputPath, fileKind, identityOf, type FileIdentity } from './fileguard.js';
export { cleanupRunSync, makeTempDir, onInterrupt, partialName, removeStalePartials, removeTempDir, runInterruptHandlers, tempBase, trackChild } from './cleanup.js';
export { checkTableBudget, tableBudget } from './budget.js';
export { NamedErrorsDevice } from './named.js';
export { acceptsOptions, choiceOption, onOffOption, optionError, readOptions, textOption, wholeOption, type FormatOption, type OptionTable, type OptionValues } from './options.js';
