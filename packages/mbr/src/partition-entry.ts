import { ImageError } from '@amitrans/block';
import { CHS_SIZE, parseChs, serializeChs, type Chs } from './chs.js';

/** One 16-byte slot of the MBR (or of an EBR), fields named after the spec. */
export interface PartitionEntry {
  /** 0x80 active (bootable), 0x00 inactive; anything else means the sector is not a partition table. */
  readonly status: number;
  readonly firstChs: Chs;
  /** The partition type byte (0x83 Linux, 0x05 extended, 0xEE GPT protective...). 0 is conventionally "empty". */
  readonly type: number;
  readonly lastChs: Chs;
  /** First sector, relative to the table's base (0 for the MBR; see ebr.ts for EBRs). */
  readonly firstLba: number;
  readonly sectorCount: number;
}

export const PARTITION_ENTRY_SIZE = 16;
export const STATUS_ACTIVE = 0x80;
export const STATUS_INACTIVE = 0x00;

export const EMPTY_ENTRY: PartitionEntry = {
  status: 0,
  firstChs: { cylinder: 0, head: 0, sector: 0 },
  type: 0,
  lastChs: { cylinder: 0, head: 0, sector: 0 },
  firstLba: 0,
  sectorCount: 0,
};

export function parsePartitionEntry(buf: Uint8Array, at: number): PartitionEntry {
  const dv = new DataView(buf.buffer, buf.byteOffset + at, PARTITION_ENTRY_SIZE);
  return {
    status: dv.getUint8(0),
    firstChs: parseChs(buf, at + 1),
    type: dv.getUint8(4),
    lastChs: parseChs(buf, at + 5),
    firstLba: dv.getUint32(8, true),
    sectorCount: dv.getUint32(12, true),
  };
}

export function serializePartitionEntry(entry: PartitionEntry, buf: Uint8Array, at: number): void {
  for (const [name, value, max] of [
    ['status', entry.status, 0xff],
    ['type', entry.type, 0xff],
    ['first LBA', entry.firstLba, 0xffffffff],
    ['sector count', entry.sectorCount, 0xffffffff],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value > max) {
      throw new ImageError('E_TOO_LARGE', `${name} ${value} does not fit its ${max === 0xff ? 8 : 32}-bit field`,
        { structure: 'partition entry', offset: at });
    }
  }
  const dv = new DataView(buf.buffer, buf.byteOffset + at, PARTITION_ENTRY_SIZE);
  dv.setUint8(0, entry.status);
  serializeChs(entry.firstChs, buf, at + 1);
  dv.setUint8(4, entry.type);
  serializeChs(entry.lastChs, buf, at + 1 + CHS_SIZE + 1);
  dv.setUint32(8, entry.firstLba, true);
  dv.setUint32(12, entry.sectorCount, true);
}

/**
 * An unused slot. Like the Linux kernel, a slot is empty when it has no sectors, whatever
 * its type: a type-0 slot that has sectors is still a partition to the kernel and sfdisk.
 */
export function isEmptyEntry(entry: PartitionEntry): boolean {
  return entry.sectorCount === 0;
}
