import { ImageError, WriteBehind, WriteCounter, blockPlans, groupPlans, copyToSink, dataBlocks, isZero, readAhead, type BlockDevice, type Sink, type WriteOptions, type WriteResult } from '@amitrans/block';
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
  const io = new WriteCounter(sink, options, plan.size);
  if (settings.subformat === 'fixed') await writeFixed(disk, io, plan, settings);
  else await writeDynamic(disk, io, plan, settings);
  io.tick(plan.size);
  return { bytesRead: io.bytesRead, bytesWritten: io.bytesWritten, virtualSize: plan.size, notes: plan.notes };
}

/** Fixed: the data as is (unread holes and all-zero blocks become holes), then the footer. */
async function writeFixed(disk: BlockDevice, io: WriteCounter, plan: VhdSizePlan, settings: VhdWriteSettings): Promise<void> {
  const copied = await copyToSink(disk, io.sink, { progress: (done) => io.tick(done), signal: io.options.signal });
  io.bytesRead += copied.bytesRead;
  io.bytesWritten += copied.bytesWritten;
  await io.sink.skip(plan.size - disk.size);
  await io.write(serializeFooter(makeFooter(plan, settings, DiskType.fixed)));
}

/**
 * Dynamic: footer copy, header, BAT of exactly ceil(size / 2 MiB) entries, then one
 * (bitmap + 2 MiB) block per block holding non-zero data, then the footer.
 *
 * On a seekable sink the data is read once: blocks are appended as they prove non-zero
 * and the BAT is patched at the end, so the map is exact. On a stream the BAT must come
 * first: it is built from the source's extents, and a block that turns out all zero is
 * still stored (with an all-zero sector bitmap, so it reads as not present).
 */
async function writeDynamic(disk: BlockDevice, io: WriteCounter, plan: VhdSizePlan, settings: VhdWriteSettings): Promise<void> {
  const blockSize = WRITE_BLOCK_SIZE;
  const entries = Math.ceil(plan.size / blockSize);
  const bat = new Uint32Array(entries).fill(UNUSED);
  const footer = serializeFooter(makeFooter(plan, settings, DiskType.dynamic));
  const tableOffset = FOOTER_SIZE + DYNAMIC_HEADER_SIZE;
  const header = serializeDynamicHeader({ tableOffset, headerVersion: 0x00010000, maxTableEntries: entries, blockSize });
  const ones = new Uint8Array(bitmapBytes(blockSize)).fill(0xff);
  const start = io.sink.position;
  const nextSector = (): number => (io.sink.position - start) / SECTOR;

  if (io.sink.seekable) {
    await io.write(footer);
    await io.write(header);
    const batAt = io.sink.position;
    await io.write(serializeBat(bat));
    // A block's writes run while the next block is read and checked.
    io.bytesWritten += await WriteBehind.over(io.sink, async (out) => {
      // Blocks are read two at a time: fewer round trips for the same bytes.
      const window = 2 * blockSize;
      for await (const w of readAhead(disk, groupPlans(blockPlans(disk, blockSize), window), { maxLength: window, signal: io.options.signal })) {
        io.tick(w.offset);
        io.bytesRead += w.bytesRead;
        for (let at = 0; at < w.length; at += blockSize) {
          const block = w.data.subarray(at, at + blockSize);
          if (isZero(block)) continue;
          bat[(w.offset + at) / blockSize] = (out.position - start) / SECTOR;
          out.write(ones);
          out.write(block);
        }
        await out.endWindow();
      }
    });
    await io.write(footer);
    await io.sink.pwrite(serializeBat(bat), batAt);
    return;
  }

  // Stream: first pass over the allocation map only (extents, no data).
  let sector = (tableOffset + batBytes(entries)) / SECTOR;
  for await (const block of dataBlocks(disk, blockSize)) {
    bat[block.index] = sector;
    sector += (ones.length + blockSize) / SECTOR;
  }
  await io.write(footer);
  await io.write(header);
  await io.write(serializeBat(bat));
  const zeroBitmap = new Uint8Array(ones.length);
  let next = 0;
  const emit = async (index: number, data: Uint8Array): Promise<void> => {
    if (bat[index] !== nextSector()) {
      throw new ImageError('E_IO', `the source's allocation map changed while it was being written (block ${index})`);
    }
    await io.write(isZero(data) ? zeroBitmap : ones);
    await io.write(data);
  };
  for await (const w of readAhead(disk, blockPlans(disk, blockSize), { maxLength: blockSize, signal: io.options.signal })) {
    const index = w.offset / blockSize;
    io.tick(w.offset);
    io.bytesRead += w.bytesRead;
    // Blocks the first pass saw but this one does not are stored as zeros.
    for (; next < index; next++) if (bat[next] !== UNUSED) await emit(next, new Uint8Array(blockSize));
    await emit(index, w.data);
    next = index + 1;
  }
  for (; next < entries; next++) if (bat[next] !== UNUSED) await emit(next, new Uint8Array(blockSize));
  await io.write(footer);
}
