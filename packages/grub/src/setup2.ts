import { ImageError, view } from '@amitrans/block';
import { DECOMPRESSOR, DISKBOOT, MAX_CORE_SIZE, SECTOR } from './coreimg.js';
import { addRedundancy } from './reedsolomon.js';

/** boot.img (boot.S) fields grub-bios-setup patches (include/grub/i386/pc/boot.h). */
export const BOOT_IMG = {
  BPB_START: 0x003,
  BPB_END: 0x05a, // exclusive: 0x003-0x059 come from the old MBR
  KERNEL_SECTOR: 0x05c,
  BOOT_DRIVE: 0x064,
  DRIVE_CHECK: 0x066,
  WINDOWS_NT_MAGIC: 0x1b8, // from here to 0x1FD: kept from the old MBR
  SIGNATURE: 0x1fe,
} as const;

/** The segment diskboot loads the rest of core.img to: 0x800 + one sector. */
const FIRST_SEGMENT = 0x0820;
const MAX_SECTORS = MAX_CORE_SIZE / SECTOR;

export interface Grub2SetupOptions {
  /** Write Reed-Solomon parity into the rest of the embedding area (default true, as grub-bios-setup). */
  reedSolomon?: boolean;
}

export interface Grub2BootSectors {
  /** The new LBA 0. */
  mbr: Uint8Array;
  /** LBA 1..n: core.img with its blocklist, padded, with parity. */
  embedded: Uint8Array;
}

/** The lowest start of a used primary entry: the embedding area ends there. */
function gapEnd(mbr: Uint8Array): number {
  const dv = view(mbr);
  let end = Infinity;
  for (let i = 0; i < 4; i++) {
    const e = 0x1be + 16 * i;
    const flag = mbr[e]!;
    const type = mbr[e + 4]!;
    if (type === 0) continue;
    if (flag !== 0 && flag !== 0x80) throw new ImageError('E_CORRUPT', `partition entry ${i + 1} has boot flag 0x${flag.toString(16)}`, { structure: 'MBR partition table', offset: e });
    if (type === 0xee) throw new ImageError('E_UNSUPPORTED', 'the disk is GPT (protective MBR): GRUB 2 i386-pc embeds only in an MBR gap here', { structure: 'MBR partition table', offset: e + 4 });
    end = Math.min(end, dv.getUint32(e + 8, true));
  }
  return end;
}

/**
 * What `grub-bios-setup` writes to LBA 0..n of a disk whose MBR is `oldMbr`, embedding
 * `core` (from buildCoreImage) in the gap before the first partition: boot.img with the old
 * BPB area, disk signature and partition table, pointing at LBA 1; core.img's blocklist
 * covering the embedding area; Reed-Solomon parity filling it. Pure: the caller writes.
 */
export function grub2BootSectors(oldMbr: Uint8Array, bootImg: Uint8Array, core: Uint8Array, options: Grub2SetupOptions = {}): Grub2BootSectors {
  if (bootImg.length !== SECTOR || bootImg[0x1fe] !== 0x55 || bootImg[0x1ff] !== 0xaa) throw new ImageError('E_CORRUPT', 'boot.img must be one 512-byte sector ending in 55 AA', { structure: 'boot.img' });
  if (oldMbr.length !== SECTOR) throw new ImageError('E_CORRUPT', 'the MBR must be one 512-byte sector', { structure: 'MBR' });
  if (oldMbr[0x1fe] !== 0x55 || oldMbr[0x1ff] !== 0xaa) throw new ImageError('E_BAD_MAGIC', 'the disk has no MBR (55 AA missing): partition it first', { structure: 'MBR', offset: 0x1fe });
  if (core.length <= SECTOR + 0x20) throw new ImageError('E_CORRUPT', `core.img is only ${core.length} bytes`, { structure: 'core.img' });
  const noRs = view(core).getUint16(SECTOR + DECOMPRESSOR.NO_REED_SOLOMON_LENGTH, true);
  if (noRs === 0xffff || noRs < 0x20 || SECTOR + noRs > core.length) throw new ImageError('E_CORRUPT', `core.img's no-Reed-Solomon length ${noRs} does not fit it (a core.img of another GRUB version?)`, { structure: 'core.img', offset: SECTOR + DECOMPRESSOR.NO_REED_SOLOMON_LENGTH });
  const coreSectors = Math.ceil(core.length / SECTOR);
  const gap = gapEnd(oldMbr) - 1;
  if (gap < coreSectors) {
    throw new ImageError('E_OUT_OF_RANGE', `the first partition starts at sector ${gap + 1}, but GRUB 2's core.img needs sectors 1..${coreSectors} before it (use the modern alignment: partition 1 at 2048)`, { structure: 'MBR partition table', offset: 0x1be });
  }
  const rs = options.reedSolomon ?? true;
  const nsec = Math.min(gap, Math.min(rs ? 2 * coreSectors : coreSectors, MAX_SECTORS));

  const embedded = new Uint8Array(nsec * SECTOR);
  embedded.set(core);
  const ev = view(embedded);
  // The blocklist: clear the entries in use, then one run covering LBA 2..nsec.
  for (let at = DISKBOOT.FIRST_BLOCK; at > 0x147 && ev.getUint16(at + 8, true) !== 0; at -= DISKBOOT.ENTRY) embedded.fill(0, at, at + DISKBOOT.ENTRY);
  ev.setBigUint64(DISKBOOT.FIRST_BLOCK, 2n, true);
  ev.setUint16(DISKBOOT.BLOCK_LEN, nsec - 1, true);
  ev.setUint16(DISKBOOT.BLOCK_SEGMENT, FIRST_SEGMENT, true);
  if (rs) {
    ev.setUint32(SECTOR + DECOMPRESSOR.REED_SOLOMON_REDUNDANCY, nsec * SECTOR - core.length, true);
    const start = SECTOR + noRs;
    addRedundancy(embedded, start, core.length - start, nsec * SECTOR - core.length);
  }

  const mbr = new Uint8Array(bootImg);
  mbr.set(oldMbr.subarray(BOOT_IMG.BPB_START, BOOT_IMG.BPB_END), BOOT_IMG.BPB_START);
  mbr.set(oldMbr.subarray(BOOT_IMG.WINDOWS_NT_MAGIC, BOOT_IMG.SIGNATURE), BOOT_IMG.WINDOWS_NT_MAGIC);
  view(mbr).setBigUint64(BOOT_IMG.KERNEL_SECTOR, 1n, true);
  mbr[BOOT_IMG.BOOT_DRIVE] = 0xff;
  // The drive-check jmp becomes two NOPs for a hard disk.
  mbr[BOOT_IMG.DRIVE_CHECK] = 0x90;
  mbr[BOOT_IMG.DRIVE_CHECK + 1] = 0x90;
  return { mbr, embedded };
}
