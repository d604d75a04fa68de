import { CountingSink, ImageError, appendUnits, clusterRuns, clusterWindows, copyToSink, dataRanges, runTotal, type BlockDevice, type Sink, type WriteOptions, type WriteResult } from '@amitrans/block';
import { BLOCK_FREE, serializeBlockMap } from './blockMap.js';
import { HEADER_BLOCK, HEADER_SIZE_V1PLUS, HEADER_TEXT, ImageType, VDI_VERSION_1_1, type VdiHeader, serializeVdiHeader } from './header.js';
import { MAX_MAP_ENTRIES } from './reader.js';
import { type VdiWriteSettings, parseVdiOptions } from './options.js';
import { uuidToRtuuid } from './uuid.js';

/** VirtualBox's block size, and the only one QEMU accepts. */
export const WRITE_BLOCK_SIZE = 1024 * 1024;
/** Blocks are read a few at a time: one 1 MiB read per block costs more in round trips than in copying. */
const READ_WINDOW = 4 * WRITE_BLOCK_SIZE;
/** VirtualBox aligns the block map and the data area to 1 MiB (VDI_DATA_ALIGN). */
export const DATA_ALIGN = 1024 * 1024;

export interface VdiWriteResult extends WriteResult {
  readonly virtualSize: number;
  /** Data blocks stored. */
  readonly blocksAllocated: number;
}

export interface VdiLayout {
  readonly diskSize: number;
  readonly blocks: number;
  readonly offBlocks: number;
  readonly offData: number;
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

export function planVdiLayout(sourceSize: number): VdiLayout {
  const diskSize = alignUp(sourceSize, 512);
  const blocks = Math.ceil(diskSize / WRITE_BLOCK_SIZE);
  if (blocks > MAX_MAP_ENTRIES) {
    throw new ImageError('E_TOO_LARGE', `a ${diskSize}-byte disk needs ${blocks} blocks, beyond the maximum of ${MAX_MAP_ENTRIES}`, { structure: 'VDI header' });
  }
  const offBlocks = alignUp(HEADER_BLOCK, DATA_ALIGN);
  return { diskSize, blocks, offBlocks, offData: alignUp(offBlocks + blocks * 4, DATA_ALIGN) };
}

function makeHeader(layout: VdiLayout, settings: VdiWriteSettings, blocksAllocated: number): VdiHeader {
  return {
    text: HEADER_TEXT,
    version: VDI_VERSION_1_1,
    headerSize: HEADER_SIZE_V1PLUS,
    imageType: settings.fixed ? ImageType.fixed : ImageType.normal,
    flags: 0,
    comment: '',
    offBlocks: layout.offBlocks,
    offData: layout.offData,
    // Geometry 0 means "let the VM pick"; the sector size must be 512 for every reader.
    legacyGeometry: { cylinders: 0, heads: 0, sectors: 0, sectorSize: 512 },
    diskSize: layout.diskSize,
    blockSize: WRITE_BLOCK_SIZE,
    blockExtra: 0,
    blocksInImage: layout.blocks,
    blocksAllocated,
    uuidCreate: uuidToRtuuid(settings.uuidCreate),
    uuidModify: uuidToRtuuid(settings.uuidModify),
    uuidLinkage: new Uint8Array(16),
    uuidParentModify: new Uint8Array(16),
    lchsGeometry: { cylinders: 0, heads: 0, sectors: 0, sectorSize: 512 },
  };
}

/** Write `disk` as a VDI (dynamic, or static with -o subformat=static) to `sink`. The caller commits the sink. */
export async function writeVdi(disk: BlockDevice, sink: Sink, options: WriteOptions = {}): Promise<VdiWriteResult> {
  const settings = parseVdiOptions(options.options);
  const layout = planVdiLayout(disk.size);
  const out = new CountingSink(sink);
  const io: VdiOutput = {
    out,
    signal: options.signal,
    progress: (done) => {
      options.signal?.throwIfAborted();
      options.progress?.(Math.min(done, layout.diskSize), layout.diskSize);
    },
  };
  const r = settings.fixed ? await writeStatic(disk, io, layout, settings) : await writeDynamic(disk, io, layout, settings);
  io.progress(layout.diskSize);
  return { bytesRead: r.bytesRead, bytesWritten: out.written, virtualSize: layout.diskSize, blocksAllocated: r.allocated };
}

interface VdiOutput {
  readonly out: CountingSink;
  readonly signal: AbortSignal | undefined;
  readonly progress: (done: number) => void;
}

/** Header, then a hole up to the 1 MiB-aligned map, the map, and a hole up to the data. */
async function writeMetadata(out: CountingSink, header: Uint8Array, map: Uint8Array, layout: VdiLayout): Promise<void> {
  await out.write(header);
  await out.skip(layout.offBlocks - HEADER_BLOCK);
  await out.write(map);
  await out.skip(layout.offData - layout.offBlocks - map.length);
}

/** Static: every block stored in order (block i at data block i); holes stay holes. */
async function writeStatic(disk: BlockDevice, io: VdiOutput, layout: VdiLayout, settings: VdiWriteSettings): Promise<{ bytesRead: number; allocated: number }> {
  const map = new Uint32Array(layout.blocks).map((_, i) => i);
  await writeMetadata(io.out, serializeVdiHeader(makeHeader(layout, settings, layout.blocks)), serializeBlockMap(map), layout);
  const copied = await copyToSink(disk, io.out, { progress: io.progress, signal: io.signal });
  await io.out.skip(layout.blocks * WRITE_BLOCK_SIZE - disk.size);
  return { bytesRead: copied.bytesRead, allocated: layout.blocks };
}

/**
 * Dynamic: only blocks holding non-zero data are stored, in ascending order. On a
 * seekable sink the data is read once and the header and map are patched at the end, so
 * the map is exact. On a stream they come first, built from the source's data ranges: a
 * block the map called data but that turns out all zero is still stored.
 */
async function writeDynamic(disk: BlockDevice, io: VdiOutput, layout: VdiLayout, settings: VdiWriteSettings): Promise<{ bytesRead: number; allocated: number }> {
  const map = new Uint32Array(layout.blocks).fill(BLOCK_FREE);
  const ranges = await dataRanges(disk, io.signal);
  const out = io.out;
  const start = out.position;
  if (out.seekable) {
    let allocated = 0;
    await out.skip(layout.offData);
    // Blocks are read a few at a time; back-to-back non-zero blocks go out as one write.
    const bytesRead = await appendUnits(disk, ranges, out, {
      unit: WRITE_BLOCK_SIZE, window: READ_WINDOW, signal: io.signal, progress: io.progress,
      place: (first, count) => {
        for (let i = 0; i < count; i++) map[first + i] = allocated++;
      },
    });
    await out.pwrite(serializeVdiHeader(makeHeader(layout, settings, allocated)), start);
    await out.pwrite(serializeBlockMap(map), start + layout.offBlocks);
    return { bytesRead, allocated };
  }
  const runs = clusterRuns(ranges, WRITE_BLOCK_SIZE);
  let allocated = 0;
  for (const r of runs) for (let b = r.first; b < r.first + r.count; b++) map[b] = allocated++;
  await writeMetadata(out, serializeVdiHeader(makeHeader(layout, settings, runTotal(runs))), serializeBlockMap(map), layout);
  let bytesRead = 0;
  for await (const w of clusterWindows(disk, ranges, WRITE_BLOCK_SIZE, { chunkSize: READ_WINDOW, signal: io.signal, onRead: (n) => (bytesRead += n) })) {
    await out.write(w.data);
    io.progress((w.first + w.count) * WRITE_BLOCK_SIZE);
  }
  return { bytesRead, allocated };
}
