import type { RemoteOptions } from '@amitrans/remote';
import { ImageError, SliceDevice, type BlockDevice } from '@amitrans/block';
import { extFacts, probeExt, readSuperblock, type ExtFacts } from '@amitrans/extfs';
import { gptTypeName, partitionTypeName, readPartitionTable, type GptPartition, type MbrPartition } from '@amitrans/mbr';
import { openImage, type ImageInput, type OpenedImage } from './open.js';
import { metered, type NetworkSummary } from './network.js';

export type FilesystemInfo = ExtFacts;

export interface PartitionInfo {
  index: number;
  kind: 'primary' | 'extended' | 'logical' | 'gpt';
  /** Byte offset of the partition in the virtual disk. */
  start: number;
  startSector: number;
  size: number;
  sectors: number;
  /** MBR type as "0x83", or a GPT type GUID. */
  type: string;
  typeName: string;
  bootable: boolean;
  name?: string;
  /** ext facts when the partition holds an ext2/3/4 filesystem; null when it holds something else. */
  filesystem: FilesystemInfo | null;
  /** Why the filesystem could not be read, when its superblock is damaged. */
  filesystemError?: string;
}

/** What `amitrans info --json` prints (documented in packages/cli/README.md). */
export interface ImageInfo {
  file: string;
  format: string;
  subformat: string | null;
  /** 'gzip' | 'bzip2' | 'xz' when the file is a compressed image; `format` is then what was inside. */
  compression: string | null;
  fileSize: number;
  virtualSize: number;
  partitionTable: 'mbr' | 'gpt' | 'none';
  diskSignature: string | null;
  partitions: PartitionInfo[];
  /** ext facts of a bare filesystem (an unpartitioned image such as a classic AMI). */
  filesystem: FilesystemInfo | null;
  /** Set for a remote input: bytes downloaded. */
  network?: NetworkSummary;
}

async function filesystemOf(dev: BlockDevice): Promise<{ fs: FilesystemInfo | null; error?: string }> {
  if (dev.size < 2048) return { fs: null };
  const head = new Uint8Array(2048);
  await dev.read(head, 0);
  if (!probeExt(head)) return { fs: null };
  try {
    return { fs: extFacts(await readSuperblock(dev)) };
  } catch (err) {
    if (err instanceof ImageError) return { fs: null, error: err.message };
    throw err;
  }
}

export interface InfoOptions {
  /** How s3:// and http(s):// inputs are reached. */
  remote?: RemoteOptions;
  /** The name a BlockDevice input is shown under (default '<device>'). */
  name?: string;
}

/** What an image is: its container, sizes, partitions and filesystems. A device input is left open. */
export async function imageInfo(input: ImageInput, options: InfoOptions = {}): Promise<ImageInfo> {
  const net = metered(options.remote, input);
  const img = await openImage(input, { remote: net.remote, ...(options.name !== undefined ? { name: options.name } : {}) });
  try {
    return Object.assign(await infoOf(img), net.summary());
  } finally {
    await img.close();
  }
}

async function infoOf(img: OpenedImage): Promise<ImageInfo> {
  const fileSize = img.storedSize;
  const disk = img.disk;
  const info: ImageInfo = {
    file: img.file,
    format: img.detection.format,
    subformat: img.detection.subformat ?? null,
    compression: img.compression ?? null,
    fileSize,
    virtualSize: disk.size,
    partitionTable: 'none',
    diskSignature: null,
    partitions: [],
    filesystem: null,
  };
  const bare = await filesystemOf(disk);
  if (bare.fs) {
    info.filesystem = bare.fs;
    return info;
  }
  const table = await readPartitionTable(disk).catch((err: unknown) => {
    throw err instanceof ImageError ? err.inFile(img.file) : err;
  });
  info.partitionTable = table.scheme;
  if (table.scheme !== 'none') info.diskSignature = `0x${table.diskSignature.toString(16).padStart(8, '0')}`;
  for (const p of table.partitions) info.partitions.push(await partitionInfo(disk, p));
  return info;
}

async function partitionInfo(disk: BlockDevice, p: MbrPartition | GptPartition): Promise<PartitionInfo> {
  const out: PartitionInfo = {
    index: p.index,
    kind: typeof p.type === 'number' ? p.kind : 'gpt',
    start: p.start,
    startSector: p.startSector,
    size: p.size,
    sectors: p.sectors,
    type: typeof p.type === 'number' ? `0x${p.type.toString(16).padStart(2, '0')}` : p.type,
    typeName: typeof p.type === 'number' ? partitionTypeName(p.type) : gptTypeName(p.type),
    bootable: p.bootable,
    filesystem: null,
  };
  if ('name' in p) out.name = p.name;
  if (p.kind !== 'extended' && p.size > 0) {
    const fs = await filesystemOf(new SliceDevice(disk, p.start, p.size, { name: `partition ${p.index}` }));
    out.filesystem = fs.fs;
    if (fs.error !== undefined) out.filesystemError = fs.error;
  }
  return out;
}
