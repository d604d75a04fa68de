import { ImageError, view, type BlockDevice } from '@amitrans/block';
import { STAGE1, STAGE2_SECTOR2, SECTOR, checkStages, embedSectors, type StageFiles } from './stages.js';

export interface GrubInstallOptions {
  /**
   * The 0-based GRUB slice holding /boot/grub: 0 for the first primary partition
   * ((hd0,0)), 1 for the second; logical partitions start at 4.
   */
  slice: number;
  /** Directory of stage2 and menu.lst inside that partition. Default /boot/grub. */
  prefix?: string;
  /** setup --force-lba. */
  forceLba?: boolean;
}

export interface GrubBootSectors {
  /** The new LBA 0. */
  mbr: Uint8Array;
  /** LBA 1..n: the patched, zero-padded e2fs_stage1_5. */
  embedded: Uint8Array;
}

function partitionStarts(mbr: Uint8Array): number[] {
  const starts: number[] = [];
  const dv = view(mbr);
  for (let i = 0; i < 4; i++) {
    const e = 0x1be + 16 * i;
    if (mbr[e + 4] !== 0) starts.push(dv.getUint32(e + 8, true));
  }
  return starts;
}

/**
 * What `grub> root (hd0,N)` + `grub> setup (hd0)` writes to sectors 0..n of a disk whose
 * current MBR is `oldMbr`, with the stage 1.5 embedded right after the MBR. Pure: the
 * caller writes the result (to a copy-on-write overlay or an output disk).
 */
export function grubBootSectors(oldMbr: Uint8Array, stages: StageFiles, options: GrubInstallOptions): GrubBootSectors {
  checkStages(stages);
  if (oldMbr.length !== SECTOR) throw new ImageError('E_CORRUPT', 'the MBR must be one 512-byte sector', { structure: 'MBR' });
  if (oldMbr[0x1fe] !== 0x55 || oldMbr[0x1ff] !== 0xaa) {
    throw new ImageError('E_BAD_MAGIC', 'the disk has no MBR (55 AA missing): partition it first', { structure: 'MBR', offset: 0x1fe });
  }
  const n = embedSectors(stages.stage1_5);
  for (const start of partitionStarts(oldMbr)) {
    if (start - 1 < n) {
      throw new ImageError('E_OUT_OF_RANGE',
        `a partition starts at sector ${start}, but e2fs_stage1_5 needs sectors 1..${n} before the first partition`,
        { structure: 'MBR partition table', offset: 0x1be });
    }
  }
  if (!Number.isInteger(options.slice) || options.slice < 0 || options.slice > 0xfe) {
    throw new ImageError('E_OUT_OF_RANGE', `GRUB slice ${options.slice} is not between 0 and 254`);
  }
  const prefix = options.prefix ?? '/boot/grub';
  const forceLba = options.forceLba ? 1 : 0;

  // LBA 0: stock stage1, with the BPB area and the partition table of the old MBR.
  const mbr = new Uint8Array(stages.stage1);
  mbr.set(oldMbr.subarray(STAGE1.BPB_START, STAGE1.BPB_END), STAGE1.BPB_START);
  mbr.set(oldMbr.subarray(STAGE1.WINDOWS_NT_MAGIC, STAGE1.SIGNATURE), STAGE1.WINDOWS_NT_MAGIC);
  const mv = view(mbr);
  mbr[STAGE1.BOOT_DRIVE] = 0xff;
  mbr[STAGE1.FORCE_LBA] = forceLba;
  mv.setUint16(STAGE1.STAGE2_ADDRESS, 0x2000, true);
  mv.setUint32(STAGE1.STAGE2_SECTOR, 1, true);
  mv.setUint16(STAGE1.STAGE2_SEGMENT, 0x2000 >> 4, true);
  // The boot-drive check's jmp becomes two NOPs for a hard disk.
  mbr[STAGE1.BOOT_DRIVE_CHECK] = 0x90;
  mbr[STAGE1.BOOT_DRIVE_CHECK + 1] = 0x90;

  // LBA 1..n: the stage 1.5, zero-padded.
  const embedded = new Uint8Array(n * SECTOR);
  embedded.set(stages.stage1_5);
  const ev = view(embedded);
  // Its blocklist, stored downward from 0x1F8 of the first sector: clear old entries, then one run.
  for (let at = 0x1f8; at > 0x1f8 - 8 * 16 && at >= 0; at -= 8) {
    if (ev.getUint16(at + 4, true) === 0 && at !== 0x1f8) break;
    ev.setUint32(at, 0, true);
    ev.setUint16(at + 4, 0, true);
  }
  ev.setUint32(0x1f8, 2, true); // first LBA still to load: stage2_sector + 1
  ev.setUint16(0x1fc, n - 1, true);
  ev.setUint16(0x1fe, (0x2000 + SECTOR) >> 4, true);
  // Second sector: install_partition stays 0xFFFFFF (the embedded copy is on the whole disk).
  const s2 = SECTOR;
  embedded[s2 + STAGE2_SECTOR2.FORCE_LBA] = forceLba;
  const verEnd = embedded.indexOf(0, s2 + STAGE2_SECTOR2.VERSION_STRING);
  const configAt = verEnd + 1;
  const config = Buffer.from(`${prefix}/stage2 ${prefix}/menu.lst\0`, 'latin1');
  if (configAt + 4 + config.length > s2 + STAGE2_SECTOR2.CONFIG_END) {
    throw new ImageError('E_TOO_LARGE', `GRUB prefix '${prefix}' is too long for the stage 1.5 config field`, { structure: 'e2fs_stage1_5', offset: configAt });
  }
  // Device word: drive 0xFF (the boot drive), slice, no BSD sub-partition.
  ev.setUint32(configAt, (0xff << 24) | (options.slice << 16) | 0xffff, true);
  embedded.set(config, configAt + 4);
  return { mbr, embedded };
}

/**
 * The change `install` makes to the stage2 file (usually none): force_lba and the config
 * file name in its second sector. Returns a new buffer.
 */
export function patchStage2(stage2: Uint8Array, options: Pick<GrubInstallOptions, 'prefix' | 'forceLba'>): Uint8Array {
  const out = new Uint8Array(stage2);
  const s2 = SECTOR;
  out[s2 + STAGE2_SECTOR2.FORCE_LBA] = options.forceLba ? 1 : 0;
  const verEnd = out.indexOf(0, s2 + STAGE2_SECTOR2.VERSION_STRING);
  const name = Buffer.from(`${options.prefix ?? '/boot/grub'}/menu.lst\0`, 'latin1');
  if (verEnd + 1 + name.length > s2 + STAGE2_SECTOR2.CONFIG_END) {
    throw new ImageError('E_TOO_LARGE', 'GRUB prefix is too long for the stage2 config field', { structure: 'stage2', offset: verEnd + 1 });
  }
  out.set(name, verEnd + 1);
  return out;
}

/** Install GRUB's boot sectors on a writable disk (an overlay or a fresh output disk). */
export async function installGrub(disk: BlockDevice, stages: StageFiles, options: GrubInstallOptions): Promise<void> {
  const old = new Uint8Array(SECTOR);
  await disk.read(old, 0);
  const { mbr, embedded } = grubBootSectors(old, stages, options);
  await disk.write(mbr, 0);
  await disk.write(embedded, SECTOR);
}
