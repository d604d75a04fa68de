import { execFile } from 'node:child_process';
import { ConcatDevice, ImageError, MemoryDevice, ZeroDevice, trackChild, type BlockDevice } from '@amitrans/block';
import { serializeMbr } from '@amitrans/mbr';
import { writeDisk } from './convert.js';
import { resolveOutput } from './output.js';

/**
 * The disk a Eucalyptus node controller gives a partition-less EMI (specs/guest.md §4.1):
 * one MBR disk, partition 1 the EMI's filesystem, 2 the ephemeral disk (ext3, as the
 * VmType defaults format it), 3 swap. Written sparse: only the filesystem's used blocks
 * are data.
 */

const SECTOR = 512;
const ALIGN = 2048; // sectors: 1 MiB, where parted starts partitions
export const EPHEMERAL_BYTES = 64 * 2 ** 20;
export const SWAP_BYTES = 32 * 2 ** 20;
const PAGE = 4096;

function alignUp(sectors: number): number {
  return Math.ceil(sectors / ALIGN) * ALIGN;
}

/** A Linux swap area's first page (mkswap's version 1 header) followed by zeros. */
function swapArea(bytes: number): BlockDevice {
  const head = new MemoryDevice(PAGE);
  const v = new DataView(head.bytes.buffer, head.bytes.byteOffset, PAGE);
  v.setUint32(1024, 1, true); // version
  v.setUint32(1028, bytes / PAGE - 1, true); // last_page
  head.bytes.set(new TextEncoder().encode('SWAPSPACE2'), PAGE - 10);
  return new ConcatDevice([head, new ZeroDevice(bytes - PAGE)]);
}

export interface EmiDisk {
  /** Byte offset of partition 2, the ephemeral disk. */
  ephemeralOffset: number;
  notes: string[];
}

/** Write the node controller's disk for `fs` (the EMI filesystem, free blocks masked) to `path`. */
export async function writeEmiDisk(fs: BlockDevice, path: string, signal?: AbortSignal): Promise<EmiDisk> {
  const p1 = { start: ALIGN, sectors: Math.ceil(fs.size / SECTOR) };
  const p2 = { start: alignUp(p1.start + p1.sectors), sectors: EPHEMERAL_BYTES / SECTOR };
  const p3 = { start: p2.start + p2.sectors, sectors: SWAP_BYTES / SECTOR };
  const total = (p3.start + p3.sectors) * SECTOR;
  const head = new MemoryDevice(ALIGN * SECTOR);
  head.bytes.set(serializeMbr({
    diskSize: total,
    partitions: [
      { startSector: p1.start, sectors: p1.sectors, type: 0x83, bootable: true },
      { startSector: p2.start, sectors: p2.sectors, type: 0x83 },
      { startSector: p3.start, sectors: p3.sectors, type: 0x82 },
    ],
  }), 0);
  const tail = p1.sectors * SECTOR - fs.size;
  const disk = new ConcatDevice([
    head,
    fs,
    new ZeroDevice(tail + (p2.start - p1.start - p1.sectors) * SECTOR + EPHEMERAL_BYTES),
    swapArea(SWAP_BYTES),
  ]);
  await writeDisk(disk, resolveOutput(path, 'raw'), signal ? { signal } : {});
  const notes: string[] = [];
  const formatted = await mkfsEphemeral(path, p2.start * SECTOR);
  if (!formatted) notes.push('the ephemeral partition (sda2) is left unformatted: mke2fs is not installed (the node controller formats it ext3)');
  return { ephemeralOffset: p2.start * SECTOR, notes };
}

/** Format the ephemeral partition ext3 with e2fsprogs, as the node controller does; false when mke2fs is missing. */
function mkfsEphemeral(path: string, offset: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = execFile('mke2fs', ['-q', '-F', '-t', 'ext3', '-E', `offset=${offset}`, path, `${EPHEMERAL_BYTES / 1024}k`],
      { env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } },
      (err, _stdout, stderr) => {
        if (!err) resolve(true);
        else if ((err as NodeJS.ErrnoException).code === 'ENOENT') resolve(false);
        else reject(new ImageError('E_IO', `mke2fs could not format the ephemeral partition: ${stderr.trim() || err.message}`, { file: path }));
      });
    trackChild(child);
  });
}
