import { CountingSink, ImageError, appendUnits, clusterRuns, clusterWindows, copyToSink, dataRanges, isZero, type BlockDevice, type Sink, type WriteOptions, type WriteResult } from '@amitrans/block';
import { UNUSED, batBytes, bitmapBytes, serializeBat } from './bat.js';
import { DYNAMIC_HEADER_SIZE, serializeDynamicHeader } from './dynamicHeader.js';
import { DiskType, FOOTER_SIZE, NO_OFFSET, type VhdFooter, serializeFooter } from './footer.js';
import {
  type Geometry, MAX_GEOMETRY, MAX_VHD_SIZE, SECTOR, geometryCovering, geometryForSectors, geometrySectors, isMaxGeometry,
} from './geometry.js';
import { type VhdWriteSettings, parseVhdOptions } from './options.js';

/** QEMU, VirtualBox and Hyper-V all use 2 MiB blocks for new dynamic disks. */
export const WRITE_BLOCK_SIZE = 2 * 1024 * 1024;
const MIB = 1024 * 1024;

export interface VhdWriteResult extends WriteResult {
  /** The virtual size of the VHD written (may exceed the source's: see `notes`). */
  readonly virtualSize: number;
  /** Human-readable notes about decisions the caller should know (size rounding). */
  readonly notes: readonly string[];
}

export interface VhdSizePlan {
  readonly size: number;
  readonly geometry: Geometry;
  readonly creator: string;
  readonly notes: string[];
}

/**
 * Decide the virtual size, geometry and creator, as qemu-img does unless asked otherwise:
 * - default: round up to a CHS-representable size, creator `qemu` (every reader, old or
 *   new, then agrees on the size because CHS product = current_size);
 * - force_size: exact size, creator `qem2`, geometry 65535/16/255 (current_size semantics);
 * - azure: size rounded up to a whole MiB (Azure refuses anything else), creator `qem2`
 *   so QEMU and Azure read current_size, geometry from the spec algorithm as Hyper-V does.
 */
export function planVhdSize(sourceSize: number, settings: Pick<VhdWriteSettings, 'forceSize' | 'azure'>): VhdSizePlan {
  const notes: string[] = [];
  const sectors = Math.ceil(sourceSize / SECTOR);
  let plan: VhdSizePlan;
  if (settings.azure) {
    const size = Math.ceil(sourceSize / MIB) * MIB;
    if (size !== sourceSize) notes.push(`azure: size rounded up from ${sourceSize} to ${size} bytes (a whole MiB); the added tail reads as zeros`);
    plan = { size, geometry: geometryForSectors(size / SECTOR), creator: 'qem2', notes };
  } else if (settings.forceSize) {
    plan = { size: sectors * SECTOR, geometry: MAX_GEOMETRY, creator: 'qem2', notes };
  } else {
    const geometry = geometryCovering(sectors);
    const size = isMaxGeometry(geometry) ? sectors * SECTOR : geometrySectors(geometry) * SECTOR;
    plan = { size, geometry, creator: 'qemu', notes };
  }
  if (plan.size !== sourceSize && !settings.azure) {
    notes.push(`size rounded up from ${sourceSize} to ${plan.size} bytes (${settings.forceSize ? 'whole sectors' : 'CHS-representable, as qemu-img; use force_size=on to keep the exact size'}); the added tail reads as zeros`);
  }
  if (plan.size > MAX_VHD_SIZE) {
    throw new ImageError('E_TOO_LARGE', `a ${plan.size}-byte disk is beyond the VHD maximum of 2040 GiB`, { structure: 'VHD footer' });
  }
  return plan;
}

function makeFooter(plan: VhdSizePlan, settings: VhdWriteSettings, diskType: number): VhdFooter {
  return {
    features: 2,
    formatVersion: 0x00010000,
    dataOffset: diskType === DiskType.dynamic ? FOOTER_SIZE : NO_OFFSET,
    timestamp: settings.timestamp,
    creatorApplication: plan.creator,
    creatorVersion: 0x00050003,
    creatorHostOs: 0x5769326b, // 'Wi2k'
    originalSize: plan.size,
    currentSize: plan.size,
    geometry: plan.geometry,
    diskType,
    uniqueId: settings.uniqueId,
    savedState: 0,
  };
}


/** Write `disk` as a VHD (fixed or dynamic per `-o subformat`) to `sink`. The caller commits the sink. */
export async function writeVhd(disk: BlockDevice, sink: Sink, options: WriteOptions = {}): Promise<VhdWriteResult> {
  const settings = parseVhdOptions(options.options);
  const plan = planVhdSize(disk.size, settings);
  const out = new CountingSink(sink);
  const progress = (done: number): void => {
    options.signal?.throwIfAborted();
    options.progress?.(Math.min(done, plan.size), plan.size);
  };
  const bytesRead = settings.subformat === 'fixed' ? await writeFixed(disk, out, plan, settings, progress, options.signal) : await writeDynamic(disk, out, plan, settings, progress, options.signal);
  progress(plan.size);
  return { bytesRead, bytesWritten: out.written, virtualSize: plan.size, notes: plan.notes };
}

/** Fixed: the data as is (unread holes and all-zero blocks become holes), then the footer. */
async function writeFixed(disk: BlockDevice, out: CountingSink, plan: VhdSizePlan, settings: VhdWriteSettings, progress: (done: number) => void, signal?: AbortSignal): Promise<number> {
  const copied = await copyToSink(disk, out, { progress, signal });
  await out.skip(plan.size - disk.size);
  await out.write(serializeFooter(makeFooter(plan, settings, DiskType.fixed)));
  return copied.bytesRead;
}

/**
 * Dynamic: footer copy, header, BAT of exactly ceil(size / 2 MiB) entries, then one
 * (bitmap + 2 MiB) block per block holding non-zero data, then the footer.
 *
 * On a seekable sink the data is read once: blocks are appended as they prove non-zero
 * and the BAT is patched at the end, so the map is exact. On a stream the BAT must come
 * first: it is built from the source's data ranges, and a block that turns out all zero
 * is still stored (with an all-zero sector bitmap, so it reads as not present).
 */
async function writeDynamic(disk: BlockDevice, out: CountingSink, plan: VhdSizePlan, settings: VhdWriteSettings, progress: (done: number) => void, signal?: AbortSignal): Promise<number> {
  const blockSize = WRITE_BLOCK_SIZE;
  const entries = Math.ceil(plan.size / blockSize);
  const bat = new Uint32Array(entries).fill(UNUSED);
  const footer = serializeFooter(makeFooter(plan, settings, DiskType.dynamic));
  const tableOffset = FOOTER_SIZE + DYNAMIC_HEADER_SIZE;
  const ones = new Uint8Array(bitmapBytes(blockSize)).fill(0xff);
  const start = out.position;
  const ranges = await dataRanges(disk, signal);
  await out.write(footer);
  await out.write(serializeDynamicHeader({ tableOffset, headerVersion: 0x00010000, maxTableEntries: entries, blockSize }));
  let bytesRead = 0;
  if (out.seekable) {
    const batAt = out.position;
    await out.skip(batBytes(entries));
    // Blocks are read two at a time: fewer round trips for the same bytes.
    bytesRead = await appendUnits(disk, ranges, out, {
      unit: blockSize, window: 2 * blockSize, prefix: ones, signal, progress,
      place: (index, _count, at) => void (bat[index] = (at - start) / SECTOR),
    });
    await out.write(footer);
    await out.pwrite(serializeBat(bat), batAt);
    return bytesRead;
  }
  // Stream: every block holding a data range is stored, in order, where the BAT says.
  let sector = (tableOffset + batBytes(entries)) / SECTOR;
  for (const r of clusterRuns(ranges, blockSize)) {
    for (let b = r.first; b < r.first + r.count; b++, sector += (ones.length + blockSize) / SECTOR) bat[b] = sector;
  }
  await out.write(serializeBat(bat));
  const zeroBitmap = new Uint8Array(ones.length);
  for await (const w of clusterWindows(disk, ranges, blockSize, { chunkSize: blockSize, signal, onRead: (n) => (bytesRead += n) })) {
    await out.write(isZero(w.data) ? zeroBitmap : ones);
    await out.write(w.data);
    progress((w.first + 1) * blockSize);
  }
  await out.write(footer);
  return bytesRead;
}
