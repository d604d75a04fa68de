import { ImageError, isImageError, readAt, type BlockDevice } from '@amitrans/block';
import { crc32 } from './crc32.js';
import { ATTRIBUTE_LEGACY_BIOS_BOOTABLE, isUnusedGptEntry, parseGptEntry } from './gpt-entry.js';
import { hasGptSignature, parseGptHeader, type GptHeader } from './gpt-header.js';
import { checkNoOverlap, type Occupied } from './overlap.js';
import { SECTOR_SIZE, type GptPartition } from './table.js';

export interface GptContents {
  readonly header: GptHeader;
  readonly partitions: GptPartition[];
}

/**
 * Read the GPT: the primary header at LBA 1 and its entry array, or, when either is
 * damaged, the backup (where the primary says it is, else the last sector). When both are
 * damaged the primary's error is thrown: a GPT disk is never quietly taken for something else.
 */
export async function readGpt(device: BlockDevice, warnings: string[]): Promise<GptContents> {
  const lastLba = Math.floor(device.size / SECTOR_SIZE) - 1;
  let primaryHeader: GptHeader | undefined;
  try {
    return await readGptAt(device, 1, lastLba, (h) => { primaryHeader = h; });
  } catch (primaryError) {
    if (!isImageError(primaryError)) throw primaryError;
    await rejectLargeSectors(device);
    const candidates = new Set<number>();
    if (primaryHeader && primaryHeader.alternateLba > 1 && primaryHeader.alternateLba <= lastLba) {
      candidates.add(primaryHeader.alternateLba);
    }
    if (lastLba > 1) candidates.add(lastLba);
    for (const lba of candidates) {
      try {
        const backup = await readGptAt(device, lba, lastLba, () => {});
        warnings.push(`the primary GPT is damaged (${primaryError.message}); read the backup header at LBA ${lba}`);
        return backup;
      } catch (backupError) {
        if (!isImageError(backupError)) throw backupError;
      }
    }
    throw primaryError;
  }
}

/** GPT on a 4096-byte-sector disk puts its header at byte 4096; amitrans reads 512-byte sectors only. */
async function rejectLargeSectors(device: BlockDevice): Promise<void> {
  if (device.size < 4096 + 512) return;
  if (hasGptSignature(await readAt(device, 4096, 8))) {
    throw new ImageError('E_UNSUPPORTED', 'this GPT is laid out for 4096-byte sectors; only 512-byte sectors are supported',
      { structure: 'GPT header', offset: 4096 });
  }
}

async function readGptAt(
  device: BlockDevice,
  lba: number,
  lastLba: number,
  onHeader: (header: GptHeader) => void,
): Promise<GptContents> {
  const headerOffset = lba * SECTOR_SIZE;
  if (lba > lastLba) {
    throw new ImageError('E_TRUNCATED', 'the disk ends before the GPT header', { structure: 'GPT header', offset: headerOffset });
  }
  const header = parseGptHeader(await readAt(device, headerOffset, SECTOR_SIZE), headerOffset);
  onHeader(header);
  if (header.myLba !== lba) {
    throw new ImageError('E_CORRUPT', `the header at LBA ${lba} says it is at LBA ${header.myLba}`,
      { structure: 'GPT header', offset: headerOffset + 24 });
  }
  const arrayBytes = header.numberOfPartitionEntries * header.sizeOfPartitionEntry; // bounded by parseGptHeader
  const arraySectors = Math.ceil(arrayBytes / SECTOR_SIZE);
  if (header.partitionEntryLba > lastLba || header.partitionEntryLba + arraySectors > lastLba + 1) {
    throw new ImageError('E_OUT_OF_RANGE',
      `the partition entry array (LBA ${header.partitionEntryLba}, ${arrayBytes} bytes) ends past the disk's last LBA ${lastLba}`,
      { structure: 'GPT header', offset: headerOffset + 72 });
  }
  const arrayOffset = header.partitionEntryLba * SECTOR_SIZE;
  const array = await readAt(device, arrayOffset, arrayBytes);
  const arrayCrc = crc32(array);
  if (arrayCrc !== header.partitionEntryArrayCrc32) {
    throw new ImageError('E_BAD_CHECKSUM',
      `partition entry array CRC32 is 0x${header.partitionEntryArrayCrc32.toString(16)}, computed 0x${arrayCrc.toString(16)}`,
      { structure: 'GPT partition entry array', offset: arrayOffset });
  }

  const occupied: Occupied[] = [
    { first: lba, end: lba + 1, what: 'the GPT header', structure: 'GPT header', offset: headerOffset },
    { first: header.partitionEntryLba, end: header.partitionEntryLba + arraySectors, what: 'the GPT partition entry array',
      structure: 'GPT header', offset: headerOffset + 72 },
  ];
  if (lba === 1) occupied.push({ first: 0, end: 1, what: 'the protective MBR', structure: 'MBR', offset: 0 });
  const partitions: GptPartition[] = [];
  for (let slot = 0; slot < header.numberOfPartitionEntries; slot++) {
    const at = slot * header.sizeOfPartitionEntry;
    if (isUnusedGptEntry(array, at)) continue;
    const entryOffset = arrayOffset + at;
    const entry = parseGptEntry(array, at);
    const place = { structure: 'GPT partition entry', offset: entryOffset };
    if (entry.startingLba > entry.endingLba) {
      throw new ImageError('E_CORRUPT', `entry ${slot + 1} starts at LBA ${entry.startingLba}, after its end ${entry.endingLba}`, place);
    }
    if (entry.endingLba > lastLba) {
      throw new ImageError('E_OUT_OF_RANGE', `entry ${slot + 1} ends at LBA ${entry.endingLba}, past the disk's last LBA ${lastLba}`, place);
    }
    if (entry.startingLba < header.firstUsableLba || entry.endingLba > header.lastUsableLba) {
      throw new ImageError('E_OUT_OF_RANGE',
        `entry ${slot + 1} (LBA ${entry.startingLba}-${entry.endingLba}) is outside the usable LBAs ${header.firstUsableLba}-${header.lastUsableLba}`,
        place);
    }
    const sectors = entry.endingLba - entry.startingLba + 1;
    partitions.push({
      index: slot + 1,
      kind: 'primary',
      startSector: entry.startingLba,
      sectors,
      start: entry.startingLba * SECTOR_SIZE,
      size: sectors * SECTOR_SIZE,
      bootable: (entry.attributes & ATTRIBUTE_LEGACY_BIOS_BOOTABLE) !== 0n,
      type: entry.partitionTypeGuid,
      guid: entry.uniquePartitionGuid,
      name: entry.partitionName,
      attributes: entry.attributes.toString(16).padStart(16, '0'),
    });
    occupied.push({ first: entry.startingLba, end: entry.endingLba + 1, what: `partition ${slot + 1}`, ...place });
  }
  checkNoOverlap(occupied);
  return { header, partitions };
}
