import { u64le } from '@amitrans/block';
import { GUID_SIZE, parseGuid, serializeGuid } from './guid.js';

/** One GPT partition entry (UEFI spec 5.3.3); entries may be longer than 128 bytes, the rest is reserved. */
export interface GptEntry {
  readonly partitionTypeGuid: string;
  readonly uniquePartitionGuid: string;
  readonly startingLba: number;
  /** Inclusive. */
  readonly endingLba: number;
  /** Bit 0 required, bit 1 no block I/O protocol, bit 2 legacy BIOS bootable, bits 48-63 type-specific. */
  readonly attributes: bigint;
  readonly partitionName: string;
}

export const GPT_ENTRY_MIN_SIZE = 128;
const NAME_OFFSET = 56;
const NAME_BYTES = 72;
export const ATTRIBUTE_LEGACY_BIOS_BOOTABLE = 1n << 2n;

const utf16 = new TextDecoder('utf-16le');

/** An unused entry has an all-zero type GUID. */
export function isUnusedGptEntry(buf: Uint8Array, at: number): boolean {
  for (let i = 0; i < GUID_SIZE; i++) if (buf[at + i] !== 0) return false;
  return true;
}

export function parseGptEntry(buf: Uint8Array, at: number): GptEntry {
  const structure = 'GPT partition entry';
  const dv = new DataView(buf.buffer, buf.byteOffset + at, GPT_ENTRY_MIN_SIZE);
  let nameEnd = NAME_OFFSET;
  while (nameEnd < NAME_OFFSET + NAME_BYTES && (dv.getUint16(nameEnd, true) !== 0)) nameEnd += 2;
  return {
    partitionTypeGuid: parseGuid(buf, at),
    uniquePartitionGuid: parseGuid(buf, at + 16),
    startingLba: u64le(buf, at + 32, structure, 'StartingLBA'),
    endingLba: u64le(buf, at + 40, structure, 'EndingLBA'),
    attributes: dv.getBigUint64(48, true),
    partitionName: utf16.decode(buf.subarray(at + NAME_OFFSET, at + nameEnd)),
  };
}

export function serializeGptEntry(entry: GptEntry, buf: Uint8Array, at: number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset + at, GPT_ENTRY_MIN_SIZE);
  serializeGuid(entry.partitionTypeGuid, buf, at);
  serializeGuid(entry.uniquePartitionGuid, buf, at + 16);
  dv.setBigUint64(32, BigInt(entry.startingLba), true);
  dv.setBigUint64(40, BigInt(entry.endingLba), true);
  dv.setBigUint64(48, entry.attributes, true);
  const name = entry.partitionName.slice(0, NAME_BYTES / 2);
  for (let i = 0; i < name.length; i++) dv.setUint16(NAME_OFFSET + i * 2, name.charCodeAt(i), true);
}
