import { ImageError } from '@amitrans/block';
import { EMPTY_ENTRY, PARTITION_ENTRY_SIZE, parsePartitionEntry, serializePartitionEntry, type PartitionEntry } from './partition-entry.js';
import { SECTOR_SIZE } from './table.js';

/**
 * Sector 0 of a DOS-partitioned disk. An EBR has the same layout (its boot code area is
 * unused), so ebr walking reuses this structure.
 */
export interface MbrSector {
  /** The first 440 bytes, kept as they are: a boot loader's stage 1 lives here. */
  readonly bootCode: Uint8Array;
  readonly diskSignature: number;
  /** Usually 0; 0x5A5A marks a copy-protected disk. */
  readonly reserved: number;
  readonly entries: readonly [PartitionEntry, PartitionEntry, PartitionEntry, PartitionEntry];
  /** True when bytes 510-511 are 0x55 0xAA. */
  readonly hasBootSignature: boolean;
}

export const BOOT_CODE_SIZE = 440;
export const DISK_SIGNATURE_OFFSET = 0x1b8;
export const RESERVED_OFFSET = 0x1bc;
export const PARTITION_TABLE_OFFSET = 0x1be;
export const BOOT_SIGNATURE_OFFSET = 0x1fe;

export function entryOffset(slot: number): number {
  return PARTITION_TABLE_OFFSET + slot * PARTITION_ENTRY_SIZE;
}

export function parseMbrSector(buf: Uint8Array): MbrSector {
  if (buf.length < SECTOR_SIZE) {
    throw new ImageError('E_TRUNCATED', `an MBR is ${SECTOR_SIZE} bytes, got ${buf.length}`, { structure: 'MBR', offset: 0 });
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, SECTOR_SIZE);
  return {
    bootCode: buf.slice(0, BOOT_CODE_SIZE),
    diskSignature: dv.getUint32(DISK_SIGNATURE_OFFSET, true),
    reserved: dv.getUint16(RESERVED_OFFSET, true),
    entries: [
      parsePartitionEntry(buf, entryOffset(0)),
      parsePartitionEntry(buf, entryOffset(1)),
      parsePartitionEntry(buf, entryOffset(2)),
      parsePartitionEntry(buf, entryOffset(3)),
    ],
    hasBootSignature: buf[BOOT_SIGNATURE_OFFSET] === 0x55 && buf[BOOT_SIGNATURE_OFFSET + 1] === 0xaa,
  };
}

export interface MbrSectorFields {
  readonly bootCode?: Uint8Array;
  readonly diskSignature?: number;
  readonly reserved?: number;
  readonly entries?: readonly PartitionEntry[];
}

/** A 512-byte sector; the boot signature is always written. Missing entries are empty slots. */
export function serializeMbrSector(fields: MbrSectorFields): Uint8Array {
  const buf = new Uint8Array(SECTOR_SIZE);
  const bootCode = fields.bootCode ?? new Uint8Array(0);
  if (bootCode.length > BOOT_CODE_SIZE) {
    throw new ImageError('E_TOO_LARGE', `boot code is ${bootCode.length} bytes; the MBR holds ${BOOT_CODE_SIZE}`,
      { structure: 'MBR', offset: 0 });
  }
  buf.set(bootCode, 0);
  const entries = fields.entries ?? [];
  if (entries.length > 4) {
    throw new ImageError('E_TOO_LARGE', `an MBR holds 4 partition entries, got ${entries.length}`,
      { structure: 'MBR', offset: PARTITION_TABLE_OFFSET });
  }
  const diskSignature = fields.diskSignature ?? 0;
  const reserved = fields.reserved ?? 0;
  if (!Number.isInteger(diskSignature) || diskSignature < 0 || diskSignature > 0xffffffff) {
    throw new ImageError('E_TOO_LARGE', `disk signature ${diskSignature} does not fit 32 bits`,
      { structure: 'MBR', offset: DISK_SIGNATURE_OFFSET });
  }
  if (!Number.isInteger(reserved) || reserved < 0 || reserved > 0xffff) {
    throw new ImageError('E_TOO_LARGE', `reserved field ${reserved} does not fit 16 bits`,
      { structure: 'MBR', offset: RESERVED_OFFSET });
  }
  const dv = new DataView(buf.buffer);
  dv.setUint32(DISK_SIGNATURE_OFFSET, diskSignature, true);
  dv.setUint16(RESERVED_OFFSET, reserved, true);
  for (let slot = 0; slot < 4; slot++) serializePartitionEntry(entries[slot] ?? EMPTY_ENTRY, buf, entryOffset(slot));
  buf[BOOT_SIGNATURE_OFFSET] = 0x55;
  buf[BOOT_SIGNATURE_OFFSET + 1] = 0xaa;
  return buf;
}
