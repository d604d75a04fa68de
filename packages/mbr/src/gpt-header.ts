import { ImageError, u64le } from '@amitrans/block';
import { crc32 } from './crc32.js';
import { parseGuid, serializeGuid } from './guid.js';

/** The GPT header (UEFI spec 5.3.2), little-endian, in the first bytes of its sector. */
export interface GptHeader {
  readonly revision: number;
  readonly headerSize: number;
  readonly headerCrc32: number;
  readonly myLba: number;
  readonly alternateLba: number;
  readonly firstUsableLba: number;
  readonly lastUsableLba: number;
  readonly diskGuid: string;
  readonly partitionEntryLba: number;
  readonly numberOfPartitionEntries: number;
  readonly sizeOfPartitionEntry: number;
  readonly partitionEntryArrayCrc32: number;
}

export const GPT_SIGNATURE = 'EFI PART';
const SIGNATURE_BYTES = new TextEncoder().encode(GPT_SIGNATURE);
export const GPT_HEADER_MIN_SIZE = 92;
export const GPT_HEADER_CRC_OFFSET = 16;
export const GPT_REVISION_1_0 = 0x00010000;
/** The spec asks for at least 16 KiB of entries; more than this is not a table any tool writes. */
export const MAX_PARTITION_ENTRY_ARRAY = 1024 * 1024;
const MAX_ENTRY_SIZE = 4096;

export function hasGptSignature(sector: Uint8Array): boolean {
  if (sector.length < SIGNATURE_BYTES.length) return false;
  return SIGNATURE_BYTES.every((b, i) => sector[i] === b);
}

/**
 * Parse and check a header from its sector (`offset` is where that sector sits on the
 * disk, for error messages). Checks the signature, size and CRC, and that the entry array
 * has a sane shape; where the header and array lie on the disk is the caller's business.
 */
export function parseGptHeader(sector: Uint8Array, offset: number): GptHeader {
  const structure = 'GPT header';
  if (sector.length < GPT_HEADER_MIN_SIZE) {
    throw new ImageError('E_TRUNCATED', `a GPT header needs ${GPT_HEADER_MIN_SIZE} bytes, got ${sector.length}`, { structure, offset });
  }
  if (!hasGptSignature(sector)) {
    throw new ImageError('E_BAD_MAGIC', `no "${GPT_SIGNATURE}" signature`, { structure, offset });
  }
  const dv = new DataView(sector.buffer, sector.byteOffset, sector.byteLength);
  const headerSize = dv.getUint32(12, true);
  if (headerSize < GPT_HEADER_MIN_SIZE || headerSize > sector.length) {
    throw new ImageError('E_CORRUPT', `header size ${headerSize} is outside ${GPT_HEADER_MIN_SIZE}-${sector.length}`,
      { structure, offset: offset + 12 });
  }
  const headerCrc32 = dv.getUint32(GPT_HEADER_CRC_OFFSET, true);
  const copy = sector.slice(0, headerSize);
  copy.fill(0, GPT_HEADER_CRC_OFFSET, GPT_HEADER_CRC_OFFSET + 4);
  const actual = crc32(copy);
  if (actual !== headerCrc32) {
    throw new ImageError('E_BAD_CHECKSUM',
      `header CRC32 is 0x${headerCrc32.toString(16)}, computed 0x${actual.toString(16)}`, { structure, offset: offset + 16 });
  }
  const header: GptHeader = {
    revision: dv.getUint32(8, true),
    headerSize,
    headerCrc32,
    myLba: u64le(sector, 24, structure, 'MyLBA'),
    alternateLba: u64le(sector, 32, structure, 'AlternateLBA'),
    firstUsableLba: u64le(sector, 40, structure, 'FirstUsableLBA'),
    lastUsableLba: u64le(sector, 48, structure, 'LastUsableLBA'),
    diskGuid: parseGuid(sector, 56),
    partitionEntryLba: u64le(sector, 72, structure, 'PartitionEntryLBA'),
    numberOfPartitionEntries: dv.getUint32(80, true),
    sizeOfPartitionEntry: dv.getUint32(84, true),
    partitionEntryArrayCrc32: dv.getUint32(88, true),
  };
  const size = header.sizeOfPartitionEntry;
  // 128 * 2^n, per the spec; anything else means the array cannot be walked.
  if (size < 128 || size > MAX_ENTRY_SIZE || (size & (size - 1)) !== 0) {
    throw new ImageError('E_CORRUPT', `partition entry size ${size} is not 128 x 2^n (at most ${MAX_ENTRY_SIZE})`,
      { structure, offset: offset + 84 });
  }
  if (header.numberOfPartitionEntries * size > MAX_PARTITION_ENTRY_ARRAY) {
    throw new ImageError('E_TOO_LARGE',
      `${header.numberOfPartitionEntries} entries of ${size} bytes exceed ${MAX_PARTITION_ENTRY_ARRAY} bytes`,
      { structure, offset: offset + 80 });
  }
  if (header.firstUsableLba > header.lastUsableLba + 1) {
    throw new ImageError('E_CORRUPT', `first usable LBA ${header.firstUsableLba} is past last usable LBA ${header.lastUsableLba}`,
      { structure, offset: offset + 40 });
  }
  return header;
}

/** A header sector of `sectorSize` bytes with its CRC computed; `headerCrc32` in `header` is ignored. */
export function serializeGptHeader(header: Omit<GptHeader, 'headerCrc32' | 'headerSize'>, sectorSize = 512): Uint8Array {
  const buf = new Uint8Array(sectorSize);
  const dv = new DataView(buf.buffer);
  buf.set(SIGNATURE_BYTES, 0);
  dv.setUint32(8, header.revision, true);
  dv.setUint32(12, GPT_HEADER_MIN_SIZE, true);
  dv.setBigUint64(24, BigInt(header.myLba), true);
  dv.setBigUint64(32, BigInt(header.alternateLba), true);
  dv.setBigUint64(40, BigInt(header.firstUsableLba), true);
  dv.setBigUint64(48, BigInt(header.lastUsableLba), true);
  serializeGuid(header.diskGuid, buf, 56);
  dv.setBigUint64(72, BigInt(header.partitionEntryLba), true);
  dv.setUint32(80, header.numberOfPartitionEntries, true);
  dv.setUint32(84, header.sizeOfPartitionEntry, true);
  dv.setUint32(88, header.partitionEntryArrayCrc32, true);
  dv.setUint32(GPT_HEADER_CRC_OFFSET, crc32(buf.subarray(0, GPT_HEADER_MIN_SIZE)), true);
  return buf;
}
