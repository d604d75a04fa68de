import { ImageError, readAt, type BlockDevice } from '@amitrans/block';
import { entryOffset, parseMbrSector } from './mbr-sector.js';
import { checkNoOverlap, type Occupied } from './overlap.js';
import { isEmptyEntry } from './partition-entry.js';
import { isExtendedType } from './partition-types.js';
import { SECTOR_SIZE, type MbrPartition } from './table.js';

/** More logicals than anyone makes; a longer chain is damage or a crafted image. */
export const DEFAULT_MAX_LOGICALS = 1024;

/**
 * Walk the chain of Extended Boot Records inside `extended`. Each EBR holds the logical
 * partition (entry 1, relative to the EBR itself) and the link to the next EBR (entry 2,
 * relative to the start of the extended partition). Logicals are numbered from 5 in chain
 * order, skipping EBRs without one, as the Linux kernel and fdisk do.
 */
export async function readEbrChain(device: BlockDevice, extended: MbrPartition, maxLogicals = DEFAULT_MAX_LOGICALS): Promise<MbrPartition[]> {
  if (!Number.isSafeInteger(maxLogicals) || maxLogicals < 0) {
    throw new ImageError('E_OUT_OF_RANGE', `maxLogicals ${maxLogicals} is not a whole number`, { structure: 'EBR' });
  }
  const extStart = extended.startSector;
  const extEnd = extStart + extended.sectors;
  const logicals: MbrPartition[] = [];
  const occupied: Occupied[] = [];
  const visited = new Set<number>();
  let ebrLba = extStart;
  let linkedFrom: { structure: string; offset: number } | undefined;

  for (;;) {
    const offset = ebrLba * SECTOR_SIZE;
    if (visited.has(ebrLba)) {
      throw new ImageError('E_LOOP', `the EBR chain comes back to the EBR at sector ${ebrLba}`,
        linkedFrom ?? { structure: 'EBR', offset });
    }
    if (visited.size >= maxLogicals) {
      throw new ImageError('E_TOO_LARGE', `the EBR chain is longer than ${maxLogicals} links`,
        linkedFrom ?? { structure: 'EBR', offset });
    }
    visited.add(ebrLba);
    const ebr = parseMbrSector(await readAt(device, offset, SECTOR_SIZE));
    if (!ebr.hasBootSignature) {
      // A fresh extended partition often has a blank first EBR: no logicals yet.
      if (linkedFrom === undefined) break;
      throw new ImageError('E_BAD_MAGIC', `the EBR linked to at sector ${ebrLba} has no 0x55AA signature`,
        { structure: 'EBR', offset });
    }
    occupied.push({ first: ebrLba, end: ebrLba + 1, what: `the EBR at sector ${ebrLba}`, structure: 'EBR', offset });

    const [data, link] = ebr.entries;
    if (!isEmptyEntry(data)) {
      const at = offset + entryOffset(0);
      if (isExtendedType(data.type)) {
        throw new ImageError('E_CORRUPT', `entry 1 of an EBR has the extended type 0x${data.type.toString(16)}`,
          { structure: 'EBR', offset: at });
      }
      const first = ebrLba + data.firstLba;
      const end = first + data.sectorCount;
      if (end > extEnd) {
        throw new ImageError('E_OUT_OF_RANGE',
          `logical partition (sectors ${first}-${end - 1}) ends past the extended partition (sectors ${extStart}-${extEnd - 1})`,
          { structure: 'EBR', offset: at });
      }
      const index = 5 + logicals.length;
      logicals.push({
        index,
        kind: 'logical',
        startSector: first,
        sectors: data.sectorCount,
        start: first * SECTOR_SIZE,
        size: data.sectorCount * SECTOR_SIZE,
        type: data.type,
        bootable: data.status === 0x80,
        chsStart: data.firstChs,
        chsEnd: data.lastChs,
      });
      // A logical starting at offset 0 covers its own EBR; the overlap check reports it.
      occupied.push({ first, end, what: `logical partition ${index}`, structure: 'EBR', offset: at });
    }

    if (isEmptyEntry(link)) break;
    const at = offset + entryOffset(1);
    if (!isExtendedType(link.type)) {
      throw new ImageError('E_CORRUPT', `entry 2 of an EBR links on with type 0x${link.type.toString(16)}, not an extended type`,
        { structure: 'EBR', offset: at });
    }
    const next = extStart + link.firstLba;
    if (next >= extEnd) {
      throw new ImageError('E_OUT_OF_RANGE',
        `the EBR link to sector ${next} points past the extended partition (sectors ${extStart}-${extEnd - 1})`,
        { structure: 'EBR', offset: at });
    }
    linkedFrom = { structure: 'EBR', offset: at };
    ebrLba = next;
  }
  checkNoOverlap(occupied);
  return logicals;
}
