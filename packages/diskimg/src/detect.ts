import { FileDevice, ImageError, inFile, type BlockDevice, type FormatDriver, type ProbeResult } from '@amitrans/block';
import { probeExt, readSuperblock, extFacts } from '@amitrans/extfs';
import { readPartitionTable } from '@amitrans/mbr';
import { drivers } from './drivers.js';
import { rawDriver } from './raw.js';
import { sniffCompression, type Compression } from './sniff.js';

export const PROBE_BYTES = 64 * 1024;

/** What is inside a disk: a partition table, a bare filesystem, or nothing we know. */
export type Content = 'mbr' | 'gpt' | 'ext2' | 'ext3' | 'ext4' | 'unknown';

export interface Detection {
  /**
   * The container: 'raw', 'vhd', 'vdi', 'vmdk', 'qcow2', 'ova', 'tar', or a compressor
   * ('gzip', 'bzip2', 'xz', 'zstd') wrapping something not yet looked at.
   */
  format: string;
  subformat?: string;
  /** Virtual size, when the container header alone tells it. */
  virtualSize?: number;
  /** For raw images (and any container once opened): what the disk holds. */
  content?: Content;
  /** For tar/ova: the first entry's name. */
  firstEntry?: string;
  /** The driver that claimed the container (raw included), so it is not probed again; absent for a compressor. */
  driver?: FormatDriver;
}

/** Head and tail of a file, each up to 64 KiB. */
export async function readHeadTail(dev: BlockDevice): Promise<{ head: Uint8Array; tail: Uint8Array }> {
  const head = new Uint8Array(Math.min(PROBE_BYTES, dev.size));
  await dev.read(head, 0);
  const tail = new Uint8Array(Math.min(PROBE_BYTES, dev.size));
  await dev.read(tail, dev.size - tail.length);
  return { head, tail };
}

/** The driver whose probe recognises the file, in table order (the first wins; raw, last, claims anything). */
export function probeDrivers(input: { head: Uint8Array; tail: Uint8Array; size: number }): { driver: FormatDriver; result: ProbeResult } {
  for (const driver of drivers) {
    const result = driver.probe(input);
    if (result) return { driver, result };
  }
  return { driver: rawDriver, result: { format: 'raw', virtualSize: input.size } };
}

/** Name what is at the start of a disk: a partition table or a bare ext filesystem. */
export async function detectContent(disk: BlockDevice): Promise<Content> {
  if (disk.size >= 2048) {
    const head = new Uint8Array(2048);
    await disk.read(head, 0);
    if (probeExt(head)) {
      try {
        return extFacts(await readSuperblock(disk)).type;
      } catch (err) {
        if (!(err instanceof ImageError)) throw err;
      }
    }
  }
  if (disk.size >= 512) {
    try {
      const table = await readPartitionTable(disk);
      if (table.scheme !== 'none') return table.scheme;
    } catch (err) {
      if (!(err instanceof ImageError)) throw err;
      // A damaged table is still a partition table: `info` will report the error itself.
      return 'mbr';
    }
  }
  return 'unknown';
}

/** Detect the format of a file from its head and tail. */
export async function detectFile(path: string): Promise<Detection> {
  const dev = await FileDevice.open(path);
  try {
    return await inFile(path, () => detectDevice(dev));
  } finally {
    await dev.close();
  }
}

export async function detectDevice(dev: BlockDevice): Promise<Detection> {
  const { head, tail } = await readHeadTail(dev);
  const compression: Compression | undefined = sniffCompression(head);
  if (compression) return { format: compression };
  const { driver, result } = probeDrivers({ head, tail, size: dev.size });
  const d: Detection = { format: result.format, driver };
  if (result.subformat !== undefined) d.subformat = result.subformat;
  if (result.virtualSize !== undefined) d.virtualSize = result.virtualSize;
  if (result.firstEntry !== undefined) d.firstEntry = result.firstEntry;
  if (driver === rawDriver) d.content = await detectContent(dev);
  return d;
}
