import { ImageError, readAt, type BlockDevice } from '@amitrans/block';
import { DEFAULT_MAX_LOGICALS, readEbrChain } from './ebr.js';
import { readGpt } from './gpt.js';
import { hasGptSignature, parseGptHeader } from './gpt-header.js';
import { entryOffset, parseMbrSector, type MbrSector } from './mbr-sector.js';
import { checkNoOverlap, type Occupied } from './overlap.js';
import { isEmptyEntry, STATUS_ACTIVE, STATUS_INACTIVE } from './partition-entry.js';
import { isExtendedType, TYPE_GPT_PROTECTIVE } from './partition-types.js';
import { SECTOR_SIZE, type GptTable, type MbrPartition, type MbrTable, type NoTable, type PartitionTable } from './table.js';

export interface ReadPartitionTableOptions {
  /** The longest EBR chain to follow before giving up with E_TOO_LARGE (default 1024). */
  readonly maxLogicals?: number;
}

/**
 * Read the partition table of a disk: DOS/MBR (with its extended partition), GPT (when the
 * MBR is protective), or 'none' when sector 0 is not a partition table at all. Damage is
 * an ImageError naming the structure and byte offset; nothing here loops without a bound.
 */
export async function readPartitionTable(device: BlockDevice, options: ReadPartitionTableOptions = {}): Promise<PartitionTable> {
  const warnings: string[] = [];
  if (device.size < SECTOR_SIZE) return none(`the disk is smaller than one ${SECTOR_SIZE}-byte sector`, warnings);
  const sector0 = await readAt(device, 0, SECTOR_SIZE);
  const mbr = parseMbrSector(sector0);

  if (!mbr.hasBootSignature) {
    // The UEFI spec wants a protective MBR, but a valid, checksummed GPT header at LBA 1 is
    // too strong a sign to treat the disk as unpartitioned and risk writing over it.
    if (await hasValidGptHeader(device)) {
      warnings.push('sector 0 has no MBR boot signature, but LBA 1 holds a valid GPT header');
      return gptTable(device, mbr, warnings);
    }
    return none('sector 0 has no 0x55AA boot signature', warnings);
  }
  // Hybrid MBRs list other partitions next to the 0xEE one; the GPT is still the real table.
  if (mbr.entries.some((e) => e.type === TYPE_GPT_PROTECTIVE)) return gptTable(device, mbr, warnings);

  for (const [slot, e] of mbr.entries.entries()) {
    if (e.status !== STATUS_ACTIVE && e.status !== STATUS_INACTIVE) {
      // A FAT or NTFS boot sector also ends in 0x55AA; its code and text fill these bytes.
      return none(`entry ${slot + 1} has status byte 0x${e.status.toString(16)}, so sector 0 is not a partition table`, warnings);
    }
  }
  if (mbr.entries.every(isEmptyEntry) && looksLikeVolumeBootRecord(sector0)) {
    // mkfs.fat leaves these bytes zero, so the status test above cannot catch a FAT superfloppy.
    return none('sector 0 is a FAT/NTFS volume boot record with no partition entries', warnings);
  }
  return mbrTable(device, mbr, options.maxLogicals ?? DEFAULT_MAX_LOGICALS, warnings);
}

/** A jump instruction and a plausible BIOS parameter block: the boot sector of a filesystem. */
function looksLikeVolumeBootRecord(sector: Uint8Array): boolean {
  const jump = (sector[0] === 0xeb && sector[2] === 0x90) || sector[0] === 0xe9;
  const bytesPerSector = (sector[11] ?? 0) | ((sector[12] ?? 0) << 8);
  const sectorsPerCluster = sector[13] ?? 0;
  return jump && [512, 1024, 2048, 4096].includes(bytesPerSector) &&
    sectorsPerCluster !== 0 && (sectorsPerCluster & (sectorsPerCluster - 1)) === 0;
}

function none(reason: string, warnings: string[]): NoTable {
  return { scheme: 'none', sectorSize: SECTOR_SIZE, partitions: [], reason, warnings };
}

async function hasValidGptHeader(device: BlockDevice): Promise<boolean> {
  if (device.size < 2 * SECTOR_SIZE) return false;
  const sector = await readAt(device, SECTOR_SIZE, SECTOR_SIZE);
  if (!hasGptSignature(sector)) return false;
  try {
    parseGptHeader(sector, SECTOR_SIZE);
    return true;
  } catch (err) {
    if (err instanceof ImageError) return false;
    throw err;
  }
}

async function gptTable(device: BlockDevice, mbr: MbrSector, warnings: string[]): Promise<GptTable> {
  const { header, partitions } = await readGpt(device, warnings);
  return {
    scheme: 'gpt',
    sectorSize: SECTOR_SIZE,
    diskSignature: mbr.diskSignature,
    diskGuid: header.diskGuid,
    firstUsableLba: header.firstUsableLba,
    lastUsableLba: header.lastUsableLba,
    partitions,
    warnings,
  };
}

async function mbrTable(device: BlockDevice, mbr: MbrSector, maxLogicals: number, warnings: string[]): Promise<MbrTable> {
  const diskSectors = Math.floor(device.size / SECTOR_SIZE);
  const partitions: MbrPartition[] = [];
  const occupied: Occupied[] = [{ first: 0, end: 1, what: 'the MBR', structure: 'MBR', offset: 0 }];
  for (const [slot, e] of mbr.entries.entries()) {
    if (isEmptyEntry(e)) continue;
    const offset = entryOffset(slot);
    const end = e.firstLba + e.sectorCount;
    if (end > diskSectors) {
      throw new ImageError('E_OUT_OF_RANGE',
        `partition ${slot + 1} (sectors ${e.firstLba}-${end - 1}) ends past the disk's ${diskSectors} sectors`,
        { structure: 'MBR', offset });
    }
    partitions.push({
      index: slot + 1,
      kind: isExtendedType(e.type) ? 'extended' : 'primary',
      startSector: e.firstLba,
      sectors: e.sectorCount,
      start: e.firstLba * SECTOR_SIZE,
      size: e.sectorCount * SECTOR_SIZE,
      type: e.type,
      bootable: e.status === STATUS_ACTIVE,
      chsStart: e.firstChs,
      chsEnd: e.lastChs,
    });
    occupied.push({ first: e.firstLba, end, what: `partition ${slot + 1}`, structure: 'MBR', offset });
  }
  checkNoOverlap(occupied);

  const extended = partitions.filter((p) => p.kind === 'extended');
  if (extended.length > 1) {
    throw new ImageError('E_UNSUPPORTED',
      `partitions ${extended.map((p) => p.index).join(' and ')} are both extended; only one EBR chain is supported`,
      { structure: 'MBR', offset: entryOffset((extended[1]?.index ?? 1) - 1) });
  }
  const [ext] = extended;
  if (ext) {
    partitions.push(...await readEbrChain(device, ext, maxLogicals));
  }
  if (await hasValidGptHeader(device)) {
    warnings.push('LBA 1 holds a valid GPT header, but the MBR is not protective: it is read as MBR, as fdisk does');
  }
  return { scheme: 'mbr', sectorSize: SECTOR_SIZE, diskSignature: mbr.diskSignature, partitions, warnings };
}
