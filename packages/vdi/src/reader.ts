import { BaseDevice, ImageError, checkTableBudget, type BlockDevice, type Extent, type Range } from '@amitrans/block';
import { BLOCK_FREE, BLOCK_ZERO, parseBlockMap } from './blockMap.js';
import { HEADER_BLOCK, HEADER_START, ImageType, type VdiHeader, parseVdiHeader } from './header.js';
import { isNullUuid } from './uuid.js';

/** Bounds that keep a hostile header from making us allocate or loop without end. */
export const MAX_BLOCK_SIZE = 256 * 1024 * 1024;
export const MAX_MAP_ENTRIES = 64 * 1024 * 1024;

const STRUCTURE = 'VDI header';

export type VdiSubformat = 'dynamic' | 'fixed';

export async function openVdi(container: BlockDevice): Promise<VdiDevice> {
  const fileSize = container.size;
  const headBytes = new Uint8Array(Math.min(HEADER_BLOCK, fileSize));
  await container.read(headBytes, 0);
  const header = parseVdiHeader(headBytes);
  checkHeader(header);
  const needed = Math.ceil(header.diskSize / header.blockSize);
  const mapBytes = header.blocksInImage * 4;
  if (header.offBlocks + mapBytes > fileSize) {
    throw new ImageError('E_TRUNCATED',
      `the ${mapBytes}-byte block map at ${header.offBlocks} does not fit in the ${fileSize}-byte file`,
      { structure: STRUCTURE, offset: 0x154 });
  }
  // The map, and one bit per data block the file can hold (to find two entries sharing one).
  const dataBlocks = dataBlocksIn(header, fileSize);
  checkTableBudget(needed * 4 * 2 + Math.ceil(dataBlocks / 8), `a block map of ${needed} entries`, { structure: STRUCTURE, offset: 0x180 });
  const raw = new Uint8Array(needed * 4);
  await container.read(raw, header.offBlocks);
  const map = parseBlockMap(raw, needed);
  validateMap(map, header, fileSize);
  return new VdiDevice(container, header, map);
}

function checkHeader(h: VdiHeader): void {
  const at = (offset: number): { structure: string; offset: number } => ({ structure: STRUCTURE, offset });
  if (h.imageType === ImageType.undo || h.imageType === ImageType.diff) {
    throw new ImageError('E_UNSUPPORTED',
      `this is a ${h.imageType === ImageType.diff ? 'differencing' : 'undo'} VDI: its data lives partly in a parent image; clone it to a standalone image first (VBoxManage clonemedium)`,
      at(0x4c));
  }
  if (h.imageType !== ImageType.normal && h.imageType !== ImageType.fixed) {
    throw new ImageError('E_CORRUPT', `unknown image type ${h.imageType} (1 normal, 2 fixed, 3 undo, 4 differencing)`, at(0x4c));
  }
  if (!isNullUuid(h.uuidLinkage) || !isNullUuid(h.uuidParentModify)) {
    throw new ImageError('E_UNSUPPORTED', 'this VDI names a parent image (non-null parent UUID); only standalone images are supported', at(0x1a8));
  }
  const sectorSize = h.legacyGeometry.sectorSize;
  if (sectorSize !== 512 && sectorSize !== 0) {
    throw new ImageError('E_UNSUPPORTED', `sector size ${sectorSize}; only 512 is supported`, at(0x168));
  }
  const bs = h.blockSize;
  if (bs < 512 || bs > MAX_BLOCK_SIZE || (bs & (bs - 1)) !== 0) {
    throw new ImageError('E_CORRUPT', `block size ${bs} is not a power of two between 512 bytes and 256 MiB`, at(0x178));
  }
  if (h.blockExtra > bs) {
    throw new ImageError('E_CORRUPT', `${h.blockExtra} extra bytes per block is more than the ${bs}-byte block`, at(0x17c));
  }
  const needed = Math.ceil(h.diskSize / bs);
  if (h.blocksInImage < needed) {
    throw new ImageError('E_CORRUPT', `${h.blocksInImage} blocks cannot hold a ${h.diskSize}-byte disk of ${bs}-byte blocks`, at(0x180));
  }
  if (h.blocksInImage > MAX_MAP_ENTRIES) {
    throw new ImageError('E_TOO_LARGE', `a block map of ${h.blocksInImage} entries is beyond the sane maximum of ${MAX_MAP_ENTRIES}`, at(0x180));
  }
  const headerEnd = HEADER_START + h.headerSize;
  if (h.offBlocks < headerEnd) {
    throw new ImageError('E_OVERLAP', `the block map at ${h.offBlocks} overlaps the header`, at(0x154));
  }
  if (h.offData < headerEnd) {
    throw new ImageError('E_OVERLAP', `the data area at ${h.offData} overlaps the header`, at(0x158));
  }
}

/**
 * Each data block must end inside the file, stay clear of the header and the map, and
 * belong to one virtual block only: two entries sharing a data block would make a write
 * through either show up in both, and is never produced by VirtualBox or QEMU.
 */
function validateMap(map: Uint32Array, h: VdiHeader, fileSize: number): void {
  const stride = h.blockSize + h.blockExtra;
  const mapStart = h.offBlocks;
  const mapEnd = h.offBlocks + h.blocksInImage * 4;
  // Entries past the end of the file are refused below, so one bit per data block the
  // file can hold finds a shared one in a single pass (a sort of the entries took gigabytes).
  const used = new Uint8Array(Math.ceil(dataBlocksIn(h, fileSize) / 8));
  for (let i = 0; i < map.length; i++) {
    const entry = map[i] ?? BLOCK_FREE;
    if (entry === BLOCK_FREE || entry === BLOCK_ZERO) continue;
    const start = h.offData + entry * stride;
    const inDisk = Math.min(h.blockSize, h.diskSize - i * h.blockSize);
    const end = start + h.blockExtra + inDisk;
    const where = { structure: 'VDI block map', offset: h.offBlocks + i * 4 };
    if (end > fileSize) {
      throw new ImageError('E_TRUNCATED', `block ${i} maps to data block ${entry}, past the end of the ${fileSize}-byte file`, where);
    }
    if (start < mapEnd && mapStart < end) {
      throw new ImageError('E_OVERLAP', `block ${i} maps to data block ${entry}, which overlaps the block map`, where);
    }
    const bit = 1 << (entry & 7);
    if ((used[entry >>> 3]! & bit) !== 0) {
      throw new ImageError('E_CORRUPT', `block ${i} maps to data block ${entry}, which another block uses too`, where);
    }
    used[entry >>> 3]! |= bit;
  }
}

/** How many whole data blocks fit between the data area's start and the end of the file. */
function dataBlocksIn(h: VdiHeader, fileSize: number): number {
  return Math.max(0, Math.floor((fileSize - h.offData) / (h.blockSize + h.blockExtra)) + 1);
}

/** A VDI image (dynamic or fixed) as its virtual disk. */
export class VdiDevice extends BaseDevice {
  readonly container: BlockDevice;
  readonly header: VdiHeader;
  readonly map: Uint32Array;
  readonly subformat: VdiSubformat;
  readonly blockSize: number;

  constructor(container: BlockDevice, header: VdiHeader, map: Uint32Array) {
    super(header.diskSize, false, 'VDI');
    this.container = container;
    this.header = header;
    this.map = map;
    this.blockSize = header.blockSize;
    this.subformat = header.imageType === ImageType.fixed ? 'fixed' : 'dynamic';
  }

  private kindOf(block: number): Extent['kind'] {
    const entry = this.map[block] ?? BLOCK_FREE;
    return entry === BLOCK_FREE ? 'unallocated' : entry === BLOCK_ZERO ? 'zero' : 'data';
  }

  protected override async *_extents(range: Range): AsyncIterable<Extent> {
    const end = range.offset + range.length;
    for (let at = range.offset; at < end; ) {
      const block = Math.floor(at / this.blockSize);
      const next = Math.min(end, (block + 1) * this.blockSize);
      yield { offset: at, length: next - at, kind: this.kindOf(block) };
      at = next;
    }
  }

  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    const end = position + buffer.length;
    const stride = this.blockSize + this.header.blockExtra;
    for (let at = position; at < end; ) {
      const block = Math.floor(at / this.blockSize);
      const next = Math.min(end, (block + 1) * this.blockSize);
      const part = buffer.subarray(at - position, next - position);
      const entry = this.map[block] ?? BLOCK_FREE;
      if (entry === BLOCK_FREE || entry === BLOCK_ZERO) part.fill(0);
      else {
        const fileAt = this.header.offData + entry * stride + this.header.blockExtra + (at - block * this.blockSize);
        await this.container.read(part, fileAt);
      }
      at = next;
    }
  }
}
