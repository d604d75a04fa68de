import { getRandomValues } from 'node:crypto';
import { ImageError } from '@amitrans/block';
import { chsFromLba, DEFAULT_GEOMETRY, type Chs, type Geometry } from './chs.js';
import { entryOffset, serializeMbrSector } from './mbr-sector.js';
import { checkNoOverlap, type Occupied } from './overlap.js';
import { STATUS_ACTIVE, STATUS_INACTIVE, type PartitionEntry } from './partition-entry.js';
import { isExtendedType, TYPE_GPT_PROTECTIVE, TYPE_LINUX } from './partition-types.js';
import { SECTOR_SIZE, type MbrPartition } from './table.js';

/** One slot to write. A partition read by readPartitionTable fits as is. */
export interface MbrPartitionSpec {
  /** The slot, 1-4; by default the next free one in order. */
  readonly index?: number;
  /** Logicals live in EBRs, not in sector 0, so serializeMbr skips them. */
  readonly kind?: 'primary' | 'extended' | 'logical';
  readonly startSector: number;
  readonly sectors: number;
  readonly type: number;
  readonly bootable?: boolean;
  /** Written as given; computed from the LBA under `geometry` when absent. */
  readonly chsStart?: Chs;
  readonly chsEnd?: Chs;
}

export interface MbrTableSpec {
  readonly partitions: readonly MbrPartitionSpec[];
  readonly diskSignature?: number;
  /** Up to 440 bytes of boot loader; zeros by default. */
  readonly bootCode?: Uint8Array;
  readonly reserved?: number;
  readonly geometry?: Geometry;
  /** When given, every partition must end inside a disk of this many bytes. */
  readonly diskSize?: number;
}

const MAX_U32 = 0xffffffff;

/** Sector 0 for `table`: up to four primary or extended entries, boot code, signature, 0x55AA. */
export function serializeMbr(table: MbrTableSpec): Uint8Array {
  const geometry = table.geometry ?? DEFAULT_GEOMETRY;
  const specs = table.partitions.filter((p) => p.kind !== 'logical');
  if (specs.length > 4) {
    throw new ImageError('E_TOO_LARGE', `an MBR holds 4 primary partitions, got ${specs.length}`, { structure: 'MBR', offset: entryOffset(0) });
  }
  const slots: (PartitionEntry | undefined)[] = [undefined, undefined, undefined, undefined];
  const occupied: Occupied[] = [{ first: 0, end: 1, what: 'the MBR', structure: 'MBR', offset: 0 }];
  for (const spec of specs) {
    const slot = spec.index === undefined ? slots.indexOf(undefined) : spec.index - 1;
    const offset = entryOffset(Math.max(0, Math.min(3, slot)));
    if (!Number.isInteger(slot) || slot < 0 || slot > 3 || slots[slot] !== undefined) {
      throw new ImageError('E_CORRUPT', `partition index ${spec.index ?? '(next)'} is not a free slot 1-4`, { structure: 'MBR', offset });
    }
    const { startSector, sectors } = spec;
    if (!Number.isInteger(startSector) || !Number.isInteger(sectors) || startSector < 0 || sectors < 1 ||
        startSector > MAX_U32 || sectors > MAX_U32) {
      throw new ImageError('E_TOO_LARGE', `partition ${slot + 1}: start ${startSector} and ${sectors} sectors must fit 32 bits`,
        { structure: 'MBR', offset });
    }
    const end = startSector + sectors;
    if (table.diskSize !== undefined && end > Math.floor(table.diskSize / SECTOR_SIZE)) {
      throw new ImageError('E_OUT_OF_RANGE', `partition ${slot + 1} ends at sector ${end - 1}, past the disk's end`,
        { structure: 'MBR', offset });
    }
    occupied.push({ first: startSector, end, what: `partition ${slot + 1}`, structure: 'MBR', offset });
    slots[slot] = {
      status: spec.bootable ? STATUS_ACTIVE : STATUS_INACTIVE,
      firstChs: spec.chsStart ?? chsFromLba(startSector, geometry),
      type: spec.type,
      lastChs: spec.chsEnd ?? chsFromLba(end - 1, geometry),
      firstLba: startSector,
      sectorCount: sectors,
    };
  }
  checkNoOverlap(occupied);
  const entries = slots.map((e) => e ?? emptySlot());
  return serializeMbrSector({
    bootCode: table.bootCode,
    diskSignature: table.diskSignature ?? 0,
    reserved: table.reserved ?? 0,
    entries,
  });
}

function emptySlot(): PartitionEntry {
  const zero = { cylinder: 0, head: 0, sector: 0 };
  return { status: 0, firstChs: zero, type: 0, lastChs: zero, firstLba: 0, sectorCount: 0 };
}

export interface CreateMbrOptions {
  /** The disk size in bytes; a partial last sector is not used. */
  readonly diskSize: number;
  /** 'modern' starts the partition at sector 2048 (1 MiB), 'legacy' at 63 (cylinder 0's end). */
  readonly align?: 'modern' | 'legacy';
  /** Bytes; rounded up to whole sectors. By default the rest of the disk (at most 2 TiB). */
  readonly partitionSize?: number;
  readonly type?: number;
  readonly bootable?: boolean;
  /** 32 bits; random (and non-zero) by default. */
  readonly diskSignature?: number;
  readonly bootCode?: Uint8Array;
  readonly geometry?: Geometry;
}

export interface CreatedMbr {
  /** The 512 bytes of sector 0. */
  readonly sector: Uint8Array;
  readonly diskSignature: number;
  /** The one partition, as readPartitionTable will report it. */
  readonly partition: MbrPartition;
}

/** A fresh MBR with one partition, for building a bootable disk. */
export function createMbr(options: CreateMbrOptions): CreatedMbr {
  const { diskSize } = options;
  if (!Number.isSafeInteger(diskSize) || diskSize < 0) {
    throw new ImageError('E_BAD_OFFSET', `disk size ${diskSize} is not a whole number of bytes`, { structure: 'MBR' });
  }
  const geometry = options.geometry ?? DEFAULT_GEOMETRY;
  const startSector = (options.align ?? 'modern') === 'legacy' ? 63 : 2048;
  const diskSectors = Math.floor(diskSize / SECTOR_SIZE);
  if (diskSectors <= startSector) {
    throw new ImageError('E_OUT_OF_RANGE', `a ${diskSize}-byte disk has no room for a partition at sector ${startSector}`,
      { structure: 'MBR' });
  }
  let sectors: number;
  if (options.partitionSize === undefined) {
    // 32-bit LBAs: the partition may reach sector 2^32 - 1 and no further.
    sectors = Math.min(diskSectors, MAX_U32 + 1) - startSector;
  } else {
    const size = options.partitionSize;
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new ImageError('E_BAD_OFFSET', `partition size ${size} is not a positive whole number of bytes`, { structure: 'MBR' });
    }
    sectors = Math.ceil(size / SECTOR_SIZE);
    if (startSector + sectors > diskSectors) {
      throw new ImageError('E_OUT_OF_RANGE', `a ${size}-byte partition at sector ${startSector} does not fit a ${diskSize}-byte disk`,
        { structure: 'MBR' });
    }
    if (startSector + sectors > MAX_U32 + 1) {
      throw new ImageError('E_TOO_LARGE', `a ${size}-byte partition ends past the MBR's 2 TiB limit`, { structure: 'MBR' });
    }
  }
  const type = options.type ?? TYPE_LINUX;
  if (isExtendedType(type) || type === TYPE_GPT_PROTECTIVE) {
    throw new ImageError('E_UNSUPPORTED', `createMbr makes one data partition, not type 0x${type.toString(16)}`, { structure: 'MBR' });
  }
  const diskSignature = options.diskSignature ?? randomSignature();
  const bootable = options.bootable ?? true;
  const chsStart = chsFromLba(startSector, geometry);
  const chsEnd = chsFromLba(startSector + sectors - 1, geometry);
  const sector = serializeMbr({
    partitions: [{ index: 1, startSector, sectors, type, bootable, chsStart, chsEnd }],
    diskSignature,
    bootCode: options.bootCode,
    geometry,
  });
  return {
    sector,
    diskSignature,
    partition: {
      index: 1,
      kind: 'primary',
      startSector,
      sectors,
      start: startSector * SECTOR_SIZE,
      size: sectors * SECTOR_SIZE,
      type,
      bootable,
      chsStart,
      chsEnd,
    },
  };
}

function randomSignature(): number {
  const word = new Uint32Array(1);
  // Zero reads as "no signature" to Windows, so draw again.
  do getRandomValues(word); while (word[0] === 0);
  return word[0] ?? 1;
}
