import { ConcatDevice, MemoryDevice, SliceDevice, type BlockDevice } from '@amitrans/block';
import { grubBootSectors, type StageFiles } from '@amitrans/grub';
import { DISK_TARGETS, type GuestReport, type Verdict } from '@amitrans/guest';

/**
 * Partitioned AMIs ("hd00": the filesystem in partition 1, menu.lst `root (hd0,0)`) have
 * no boot code in their MBR: pv-grub reads the partition itself. On a disk target the BIOS
 * runs sector 0, so translation installs GRUB legacy there for the root partition.
 */

const SECTOR = 512;
export { DISK_TARGETS };

/** True when sector 0's code area (the 440 bytes before the disk signature) is all zeros. */
export async function mbrHasNoBootCode(disk: BlockDevice): Promise<boolean> {
  const sector = new Uint8Array(SECTOR);
  await disk.read(sector, 0);
  return sector.subarray(0, 440).every((b) => b === 0);
}

/**
 * What inspection of the filesystem alone cannot see: on a disk target, a partitioned
 * image whose MBR has no boot code needs GRUB installed, which takes the guest's stage files.
 */
export function withMbrVerdict(v: Verdict, report: GuestReport, partition: number): Verdict {
  if (!DISK_TARGETS.includes(v.target) || v.status === 'will-not-boot') return v;
  if (report.grubStages?.e2fsStage1_5) {
    return { ...v, status: 'boots-after-translation', changes: [...v.changes, `bootloader: GRUB legacy into the MBR for partition ${partition} (sector 0 has no boot code: pv-grub hd00 layout)`] };
  }
  return {
    ...v,
    status: 'will-not-boot',
    reasons: [...v.reasons, 'sector 0 has no boot code (pv-grub hd00 layout) and the image has no GRUB legacy stage files to install: give --grub-dir'],
  };
}

/**
 * The disk up to `partitionStart` with GRUB's stage 1 in sector 0 (partition table and
 * disk signature kept) and stage 1.5 embedded after it; the rest of the gap as it was.
 */
export function bootHead(disk: BlockDevice, sector0: Uint8Array, partitionStart: number, partition: number, stages: StageFiles): BlockDevice {
  const { mbr, embedded } = grubBootSectors(sector0, stages, { slice: partition - 1 });
  const written = new MemoryDevice(SECTOR + embedded.length);
  written.bytes.set(mbr, 0);
  written.bytes.set(embedded, SECTOR);
  return new ConcatDevice([written, new SliceDevice(disk, written.size, partitionStart - written.size)]);
}
