import { ImageError, WriteBehind, WriteCounter, blockPlans, groupPlans, isZeroAt, copyToSink, dataBlocks, readAhead, type BlockDevice, type Sink, type WriteOptions, type WriteResult } from '@amitrans/block';
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
  const io = new WriteCounter(sink, options, layout.diskSize);
  const allocated = settings.fixed ? await writeStatic(disk, io, layout, settings) : await writeDynamic(disk, io, layout, settings);
  io.tick(layout.diskSize);
  return { bytesRead: io.bytesRead, bytesWritten: io.bytesWritten, virtualSize: layout.diskSize, blocksAllocated: allocated };
}

/** Header, then a hole up to the 1 MiB-aligned map, the map, and a hole up to the data. */
async function writeMetadata(io: WriteCounter, header: Uint8Array, map: Uint8Array, layout: VdiLayout): Promise<void> {
  await io.write(header);
  await io.sink.skip(layout.offBlocks - HEADER_BLOCK);
  await io.write(map);
  await io.sink.skip(layout.offData - layout.offBlocks - map.length);
}

/** Static: every block stored in order (block i at data block i); holes stay holes. */
async function writeStatic(disk: BlockDevice, io: WriteCounter, layout: VdiLayout, settings: VdiWriteSettings): Promise<number> {
  const map = new Uint32Array(layout.blocks).map((_, i) => i);
  await writeMetadata(io, serializeVdiHeader(makeHeader(layout, settings, layout.blocks)), serializeBlockMap(map), layout);
  const copied = await copyToSink(disk, io.sink, { progress: (done) => io.tick(done), signal: io.options.signal });
  io.bytesRead += copied.bytesRead;
  io.bytesWritten += copied.bytesWritten;
  await io.sink.skip(layout.blocks * WRITE_BLOCK_SIZE - disk.size);
  return layout.blocks;
}

/**
 * Dynamic: only blocks holding non-zero data are stored, in ascending order. On a
 * seekable sink the data is read once and the header and map are patched at the end, so
 * the map is exact. On a stream they come first, built from the source's extents: a
 * block the map called data but that turns out all zero is still stored.
 */
async function writeDynamic(disk: BlockDevice, io: WriteCounter, layout: VdiLayout, settings: VdiWriteSettings): Promise<number> {
  const map = new Uint32Array(layout.blocks).fill(BLOCK_FREE);
  let allocated = 0;
  const start = io.sink.position;
  if (io.sink.seekable) {
    await io.sink.skip(layout.offData);
    // A block's write runs while the next block is read and checked.
    io.bytesWritten += await WriteBehind.over(io.sink, async (out) => {
      const plans = groupPlans(blockPlans(disk, WRITE_BLOCK_SIZE), READ_WINDOW);
      for await (const w of readAhead(disk, plans, { maxLength: READ_WINDOW, signal: io.options.signal })) {
        io.tick(w.offset);
        io.bytesRead += w.bytesRead;
        // Back-to-back non-zero blocks are stored back to back: one write.
        const first = w.offset / WRITE_BLOCK_SIZE;
        const count = w.length / WRITE_BLOCK_SIZE;
        let from = -1;
        for (let i = 0; i <= count; i++) {
          const zero = i === count || isZeroAt(w.data, i * WRITE_BLOCK_SIZE, (i + 1) * WRITE_BLOCK_SIZE);
          if (!zero) {
            if (from < 0) from = i;
            map[first + i] = allocated++;
          } else if (from >= 0) {
            out.write(w.data.subarray(from * WRITE_BLOCK_SIZE, i * WRITE_BLOCK_SIZE));
            from = -1;
          }
        }
        await out.endWindow();
      }
    });
    const header = serializeVdiHeader(makeHeader(layout, settings, allocated));
    const mapBytes = serializeBlockMap(map);
    await io.sink.pwrite(header, start);
    await io.sink.pwrite(mapBytes, start + layout.offBlocks);
    io.bytesWritten += header.length + mapBytes.length;
    return allocated;
  }
  for await (const block of dataBlocks(disk, WRITE_BLOCK_SIZE)) map[block.index] = allocated++;
  await writeMetadata(io, serializeVdiHeader(makeHeader(layout, settings, allocated)), serializeBlockMap(map), layout);
  let stored = 0;
  const emit = async (index: number, data: Uint8Array): Promise<void> => {
    if (map[index] !== stored) {
      throw new ImageError('E_IO', `the source's allocation map changed while it was being written (block ${index})`);
    }
    await io.write(data);
    stored++;
  };
  let next = 0;
  for await (const w of readAhead(disk, blockPlans(disk, WRITE_BLOCK_SIZE), { maxLength: WRITE_BLOCK_SIZE, signal: io.options.signal })) {
    const index = w.offset / WRITE_BLOCK_SIZE;
    io.tick(w.offset);
    io.bytesRead += w.bytesRead;
    for (; next < index; next++) if (map[next] !== BLOCK_FREE) await emit(next, new Uint8Array(WRITE_BLOCK_SIZE));
    await emit(index, w.data);
    next = index + 1;
  }
  for (; next < layout.blocks; next++) if (map[next] !== BLOCK_FREE) await emit(next, new Uint8Array(WRITE_BLOCK_SIZE));
  return allocated;
}
