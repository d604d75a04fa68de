import { BaseDevice, ImageError, checkTableBudget, type BlockDevice, type Extent, type Range } from '@amitrans/block';
import { UNUSED, batBytes, bitmapBytes, parseBat } from './bat.js';
import { DYNAMIC_HEADER_SIZE, type DynamicHeader, parseDynamicHeader } from './dynamicHeader.js';
import { DiskType, FOOTER_COOKIE, FOOTER_SIZE, NO_OFFSET, type VhdFooter, footerVirtualSize, parseFooter } from './footer.js';
import { MAX_VHD_SIZE, SECTOR } from './geometry.js';

/** Block sizes beyond this are absurd (VPC used 512 KiB and 2 MiB) and refused. */
export const MAX_BLOCK_SIZE = 256 * 1024 * 1024;
/** A BAT larger than this (256 MiB of entries) is refused rather than loaded. */
export const MAX_BAT_ENTRIES = 64 * 1024 * 1024;

export type VhdSubformat = 'fixed' | 'dynamic';

/** Where the footer was found and what it says. */
export interface LocatedFooter {
  readonly footer: VhdFooter;
  readonly offset: number;
  /** 512, or 511 for a pre-2004 Virtual PC footer. */
  readonly length: number;
}

async function readBytes(container: BlockDevice, offset: number, length: number, structure: string): Promise<Uint8Array> {
  if (offset < 0 || offset + length > container.size) {
    throw new ImageError('E_TRUNCATED', `the file ends before the ${length}-byte ${structure}`, { structure, offset });
  }
  const buf = new Uint8Array(length);
  await container.read(buf, offset);
  return buf;
}

function cookieAt(buf: Uint8Array, at: number): boolean {
  return at >= 0 && at + 8 <= buf.length && Buffer.from(buf.subarray(at, at + 8)).toString('latin1') === FOOTER_COOKIE;
}

/**
 * Find the footer: a copy at offset 0 means a dynamic (or differencing) disk; otherwise
 * the footer is the last 512 bytes, or the last 511 for old Virtual PC images.
 */
export async function locateFooter(container: BlockDevice): Promise<LocatedFooter> {
  const size = container.size;
  if (size >= FOOTER_SIZE) {
    const head = await readBytes(container, 0, FOOTER_SIZE, 'VHD footer');
    if (cookieAt(head, 0)) {
      const footer = parseFooter(head, 0);
      if (footer.diskType !== DiskType.fixed) return { footer, offset: 0, length: FOOTER_SIZE };
    }
    const tail = await readBytes(container, size - FOOTER_SIZE, FOOTER_SIZE, 'VHD footer');
    if (cookieAt(tail, 0)) return { footer: parseFooter(tail, size - FOOTER_SIZE), offset: size - FOOTER_SIZE, length: FOOTER_SIZE };
    if (cookieAt(tail, 1)) {
      const padded = new Uint8Array(FOOTER_SIZE);
      padded.set(tail.subarray(1));
      return { footer: parseFooter(padded, size - 511), offset: size - 511, length: 511 };
    }
  }
  throw new ImageError('E_BAD_MAGIC', `no "${FOOTER_COOKIE}" footer at the start or the end of the file`, { structure: 'VHD footer' });
}

/** Open a VHD container as its virtual disk. */
export async function openVhd(container: BlockDevice): Promise<FixedVhdDevice | DynamicVhdDevice> {
  const located = await locateFooter(container);
  const { footer } = located;
  switch (footer.diskType) {
    case DiskType.fixed:
      return openFixed(container, located);
    case DiskType.dynamic:
      return openDynamic(container, located);
    case DiskType.differencing:
      throw new ImageError('E_UNSUPPORTED',
        'this is a differencing VHD (disk type 4): its data lives partly in a parent image; merge it into its parent first (e.g. with Hyper-V or vhd-util)',
        { structure: 'VHD footer', offset: located.offset + 60 });
    default:
      throw new ImageError('E_CORRUPT', `unknown disk type ${footer.diskType} (2 fixed, 3 dynamic, 4 differencing)`,
        { structure: 'VHD footer', offset: located.offset + 60 });
  }
}

function openFixed(container: BlockDevice, located: LocatedFooter): FixedVhdDevice {
  const size = footerVirtualSize(located.footer);
  if (size > located.offset) {
    throw new ImageError('E_TRUNCATED',
      `the footer describes a ${size}-byte disk but only ${located.offset} bytes of data precede it`,
      { structure: 'VHD footer', offset: located.offset });
  }
  return new FixedVhdDevice(container, located, size);
}

/** A fixed VHD: the data is the file up to the footer. */
export class FixedVhdDevice extends BaseDevice {
  readonly subformat = 'fixed' as const;
  readonly container: BlockDevice;
  readonly footer: VhdFooter;
  readonly footerLength: number;

  constructor(container: BlockDevice, located: LocatedFooter, size: number) {
    super(size, false, 'fixed VHD');
    this.container = container;
    this.footer = located.footer;
    this.footerLength = located.length;
  }

  protected override _read(buffer: Uint8Array, position: number): Promise<void> {
    return this.container.read(buffer, position);
  }

  protected override _extents(range: Range): AsyncIterable<Extent> {
    return this.container.extents(range);
  }
}

async function openDynamic(container: BlockDevice, located: LocatedFooter): Promise<DynamicVhdDevice> {
  const { footer } = located;
  const fileSize = container.size;
  const headerAt = footer.dataOffset;
  if (headerAt === NO_OFFSET || headerAt % SECTOR !== 0 || headerAt < FOOTER_SIZE) {
    throw new ImageError('E_CORRUPT', `dynamic header offset ${headerAt} is not a sector past the footer copy`,
      { structure: 'VHD footer', offset: located.offset + 16 });
  }
  const header = parseDynamicHeader(await readBytes(container, headerAt, DYNAMIC_HEADER_SIZE, 'VHD dynamic header'), headerAt);
  const { blockSize, maxTableEntries, tableOffset } = header;
  if (blockSize < SECTOR || blockSize > MAX_BLOCK_SIZE || (blockSize & (blockSize - 1)) !== 0) {
    throw new ImageError('E_CORRUPT', `block size ${blockSize} is not a power of two between 512 bytes and 256 MiB`,
      { structure: 'VHD dynamic header', offset: headerAt + 32 });
  }
  const size = footerVirtualSize(footer);
  if (size > MAX_VHD_SIZE) {
    throw new ImageError('E_TOO_LARGE', `virtual size ${size} is beyond the VHD maximum of 2040 GiB`,
      { structure: 'VHD footer', offset: located.offset + 48 });
  }
  const needed = Math.ceil(size / blockSize);
  if (maxTableEntries < needed) {
    throw new ImageError('E_CORRUPT',
      `the BAT has ${maxTableEntries} entries but a ${size}-byte disk of ${blockSize}-byte blocks needs ${needed}`,
      { structure: 'VHD dynamic header', offset: headerAt + 28 });
  }
  if (maxTableEntries > MAX_BAT_ENTRIES) {
    throw new ImageError('E_TOO_LARGE', `a BAT of ${maxTableEntries} entries is beyond the sane maximum of ${MAX_BAT_ENTRIES}`,
      { structure: 'VHD dynamic header', offset: headerAt + 28 });
  }
  const tableBytes = maxTableEntries * 4;
  if (tableOffset % SECTOR !== 0 || tableOffset + tableBytes > fileSize) {
    throw new ImageError('E_TRUNCATED',
      `the ${tableBytes}-byte BAT at ${tableOffset} does not fit in the ${fileSize}-byte file (or is not sector-aligned)`,
      { structure: 'VHD dynamic header', offset: headerAt + 16 });
  }
  // The BAT as read and parsed, and a byte per block of bitmap state (DynamicVhdDevice).
  checkTableBudget(needed * (4 + 4 + 1), `a BAT of ${needed} entries`, { structure: 'VHD dynamic header', offset: headerAt + 28 });
  const bat = parseBat(await readBytes(container, tableOffset, needed * 4, 'VHD BAT'), needed);
  validateBat(bat, header, size, fileSize, [
    [0, FOOTER_SIZE],
    [headerAt, headerAt + DYNAMIC_HEADER_SIZE],
    [tableOffset, tableOffset + batBytes(maxTableEntries)],
  ]);
  return new DynamicVhdDevice(container, footer, header, bat, size);
}

/**
 * Every used BAT entry must point at a block (bitmap + the data that lies inside the
 * virtual disk) that ends inside the file and does not overlap the metadata, so a read
 * can never return bytes from the wrong place.
 */
function validateBat(bat: Uint32Array, header: DynamicHeader, size: number, fileSize: number, metadata: [number, number][]): void {
  const bitmap = bitmapBytes(header.blockSize);
  for (let i = 0; i < bat.length; i++) {
    const entry = bat[i] ?? UNUSED;
    if (entry === UNUSED) continue;
    const start = entry * SECTOR;
    const inDisk = Math.min(header.blockSize, size - i * header.blockSize);
    const end = start + bitmap + Math.ceil(inDisk / SECTOR) * SECTOR;
    const where = { structure: 'VHD BAT', offset: header.tableOffset + i * 4 };
    if (end > fileSize) {
      throw new ImageError('E_TRUNCATED', `BAT entry ${i} points at sector ${entry}, past the end of the ${fileSize}-byte file`, where);
    }
    for (const [s, e] of metadata) {
      if (start < e && s < end) {
        throw new ImageError('E_OVERLAP', `BAT entry ${i} points at sector ${entry}, inside the VHD metadata at ${s}..${e}`, where);
      }
    }
  }
}

const BITMAP_CACHE_LIMIT = 256;
// bitmapState 0: the block's bitmap has not been read yet.
const BITMAP_FULL = 1;
const BITMAP_PARTIAL = 2;

/** A dynamic VHD: blocks found through the BAT, sectors present per the block's bitmap. */
export class DynamicVhdDevice extends BaseDevice {
  readonly subformat = 'dynamic' as const;
  readonly container: BlockDevice;
  readonly footer: VhdFooter;
  readonly header: DynamicHeader;
  readonly bat: Uint32Array;
  readonly blockSize: number;
  private readonly bitmapSize: number;
  /** Per block: whether its bitmap is known to be all ones (the common case, cached forever). */
  private readonly bitmapState: Uint8Array;
  /** Partial bitmaps, the few most recently used. */
  private readonly bitmaps = new Map<number, Uint8Array>();

  constructor(container: BlockDevice, footer: VhdFooter, header: DynamicHeader, bat: Uint32Array, size: number) {
    super(size, false, 'dynamic VHD');
    this.container = container;
    this.footer = footer;
    this.header = header;
    this.bat = bat;
    this.blockSize = header.blockSize;
    this.bitmapSize = bitmapBytes(header.blockSize);
    this.bitmapState = new Uint8Array(bat.length);
  }

  /** The block's sector bitmap, or undefined when every sector is present. */
  private async bitmap(block: number): Promise<Uint8Array | undefined> {
    const state = this.bitmapState[block];
    if (state === BITMAP_FULL) return undefined;
    const cached = this.bitmaps.get(block);
    if (cached) return cached;
    const entry = this.bat[block] ?? UNUSED;
    const sectors = Math.ceil(Math.min(this.blockSize, this.size - block * this.blockSize) / SECTOR);
    const bits = new Uint8Array(Math.ceil(sectors / 8));
    await this.container.read(bits, entry * SECTOR);
    if (allSet(bits, sectors)) {
      this.bitmapState[block] = BITMAP_FULL;
      return undefined;
    }
    this.bitmapState[block] = BITMAP_PARTIAL;
    if (this.bitmaps.size >= BITMAP_CACHE_LIMIT) this.bitmaps.clear();
    this.bitmaps.set(block, bits);
    return bits;
  }

  /**
   * Runs of one block, in byte offsets relative to the disk: 'data' where the block is
   * stored and the sector is present, 'unallocated' elsewhere (the spec's "bit 0" sectors
   * read as zero and, in a differencing disk, would come from the parent).
   */
  private async *blockRuns(block: number, from: number, to: number): AsyncIterable<Extent> {
    const base = block * this.blockSize;
    if ((this.bat[block] ?? UNUSED) === UNUSED) {
      yield { offset: base + from, length: to - from, kind: 'unallocated' };
      return;
    }
    const bits = await this.bitmap(block);
    if (!bits) {
      yield { offset: base + from, length: to - from, kind: 'data' };
      return;
    }
    let at = from;
    while (at < to) {
      const sector = Math.floor(at / SECTOR);
      const present = bitSet(bits, sector);
      let next = (sector + 1) * SECTOR;
      while (next < to && bitSet(bits, next / SECTOR) === present) next += SECTOR;
      const end = Math.min(next, to);
      yield { offset: base + at, length: end - at, kind: present ? 'data' : 'unallocated' };
      at = end;
    }
  }

  private async *runs(range: Range): AsyncIterable<Extent> {
    const end = range.offset + range.length;
    for (let at = range.offset; at < end; ) {
      const block = Math.floor(at / this.blockSize);
      const blockEnd = Math.min(end, (block + 1) * this.blockSize);
      const base = block * this.blockSize;
      yield* this.blockRuns(block, at - base, blockEnd - base);
      at = blockEnd;
    }
  }

  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    for await (const run of this.runs({ offset: position, length: buffer.length })) {
      const part = buffer.subarray(run.offset - position, run.offset - position + run.length);
      if (run.kind !== 'data') {
        part.fill(0);
        continue;
      }
      const block = Math.floor(run.offset / this.blockSize);
      const entry = this.bat[block] ?? UNUSED;
      const fileAt = entry * SECTOR + this.bitmapSize + (run.offset - block * this.blockSize);
      await this.container.read(part, fileAt);
    }
  }

  protected override _extents(range: Range): AsyncIterable<Extent> {
    return this.runs(range);
  }
}

function bitSet(bits: Uint8Array, sector: number): boolean {
  // Bit 7 of byte 0 is sector 0 (most significant bit first).
  return (((bits[sector >> 3] ?? 0) >> (7 - (sector & 7))) & 1) === 1;
}

function allSet(bits: Uint8Array, sectors: number): boolean {
  for (let s = 0; s < sectors; s++) {
    if ((s & 7) === 0 && s + 8 <= sectors) {
      if (bits[s >> 3] !== 0xff) return false;
      s += 7;
      continue;
    }
    if (!bitSet(bits, s)) return false;
  }
  return true;
}
