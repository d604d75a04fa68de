import type { RemoteOptions } from '@amitrans/remote';
import { ImageError, SliceDevice, type BlockDevice } from '@amitrans/block';
import { ExtFs, extFacts, probeExt, readSuperblock, type ExtFacts } from '@amitrans/extfs';
import { extGuestFs, inspectGuest, type BootloaderOptions, type GuestReport, type InitrdSummary } from '@amitrans/guest';
import { readPartitionTable } from '@amitrans/mbr';
import { bootloaderOptions, type BootloaderAsked } from './grub2.js';
import { mbrHasNoBootCode, withMbrVerdict } from './hd00.js';
import { readInitrdSummary } from './initrd.js';
import { openImage, type ImageInput, type OpenedImage } from './open.js';
import { metered, type NetworkSummary } from './network.js';

export interface RootFilesystem {
  device: BlockDevice;
  /** 1-based partition number, or undefined for a bare filesystem. */
  partition?: number;
  facts: ExtFacts;
}

async function extOn(dev: BlockDevice): Promise<ExtFacts | undefined> {
  if (dev.size < 2048) return undefined;
  const head = new Uint8Array(2048);
  await dev.read(head, 0);
  if (!probeExt(head)) return undefined;
  return extFacts(await readSuperblock(dev));
}

/**
 * The guest's root filesystem: the bare filesystem of a classic AMI, the partition asked
 * for, or the first ext partition that holds /etc/fstab (else the first ext partition).
 */
export async function findRoot(img: OpenedImage, partition?: number): Promise<RootFilesystem> {
  const disk = img.disk;
  if (partition === undefined) {
    const bare = await extOn(disk);
    if (bare) return { device: disk, facts: bare };
  }
  const table = await readPartitionTable(disk);
  if (table.scheme === 'none') {
    throw new ImageError('E_UNSUPPORTED', 'no partition table and no ext2/3/4 filesystem: nothing to inspect', { structure: 'disk' });
  }
  const candidates: RootFilesystem[] = [];
  for (const p of table.partitions) {
    if (p.kind === 'extended' || p.size === 0) continue;
    if (partition !== undefined && p.index !== partition) continue;
    const dev = new SliceDevice(disk, p.start, p.size, { name: `partition ${p.index}` });
    const facts = await extOn(dev).catch(() => undefined);
    if (facts) candidates.push({ device: dev, partition: p.index, facts });
  }
  if (partition !== undefined && candidates.length === 0) {
    throw new ImageError('E_UNSUPPORTED', `partition ${partition} does not exist or holds no ext2/3/4 filesystem`, { structure: 'partition table' });
  }
  if (candidates.length === 0) throw new ImageError('E_UNSUPPORTED', 'no partition holds an ext2/3/4 filesystem', { structure: 'partition table' });
  if (candidates.length === 1) return candidates[0]!;
  for (const c of candidates) {
    const fs = await ExtFs.open(c.device);
    try {
      if (await fs.exists('/etc/fstab')) return c;
    } finally {
      await fs.close();
    }
  }
  return candidates[0]!;
}

export interface ImageInspection {
  file: string;
  format: string;
  partition: number | null;
  report: GuestReport;
  /** Set for a remote input: bytes downloaded. */
  network?: NetworkSummary;
}

export interface InspectOptions extends BootloaderAsked {
  /** Inspect this partition (1-based) instead of finding the root. */
  partition?: number;
  /** How s3:// and http(s):// inputs are reached. */
  remote?: RemoteOptions;
  /** The name a BlockDevice input is shown under (default '<device>'). */
  name?: string;
  /** Summarise initrds (default: the built-in initrd reader). */
  readInitrd?: (fs: ExtFs, path: string, size: number) => Promise<InitrdSummary>;
  /** Wrap the guest filesystem's device before inspection reads it (tests count reads with it). */
  wrapDevice?: (device: BlockDevice) => BlockDevice;
}

/**
 * Inspect the guest inside an image: what it is, how it boots, and where it would boot.
 * A device input is left open.
 */
export async function inspectImage(input: ImageInput, options: InspectOptions = {}): Promise<ImageInspection> {
  const net = metered(options.remote, input);
  const img = await openImage(input, { remote: net.remote, ...(options.name !== undefined ? { name: options.name } : {}) });
  try {
    return { ...(await inspectOpened(img, options)), ...net.summary() };
  } finally {
    await img.close();
  }
}

/**
 * Inspect the guest on its root filesystem, opened by the caller (translate opens it
 * writable over an overlay); `bootloader` is what a disk build may install besides the
 * guest's own GRUB.
 */
export function inspectRoot(ext: ExtFs, root: RootFilesystem, bootloader: BootloaderOptions | undefined, readInitrd = readInitrdSummary): Promise<GuestReport> {
  return inspectGuest(extGuestFs(ext), {
    layout: root.partition === undefined ? 'bare-filesystem' : 'partitioned',
    filesystem: { type: root.facts.type, label: root.facts.label, uuid: root.facts.uuid, inodeSize: root.facts.inodeSize, features: root.facts.features },
    readInitrd: (p: string, size: number) => readInitrd(ext, p, size),
    ...(bootloader ? { bootloader } : {}),
  });
}

/** inspectImage on an image already open (verify reads the same image afterwards). */
export async function inspectOpened(img: OpenedImage, options: InspectOptions = {}): Promise<ImageInspection> {
  const root = await findRoot(img, options.partition).catch((err: unknown) => {
    throw err instanceof ImageError ? err.inFile(img.file) : err;
  });
  const device = options.wrapDevice ? options.wrapDevice(root.device) : root.device;
  // ExtFs keeps its own read cache (libext2fs re-reads the same blocks for every lookup).
  const ext = await ExtFs.open(device);
  try {
    // The disk-target verdicts say which GRUB a translation would install: the host's GRUB 2
    // counts, and so do --bootloader and --grub-dir when the caller (the fleet) translates with them.
    const report = await inspectRoot(ext, root, await bootloaderOptions(options), options.readInitrd);
    if (root.partition !== undefined && (await mbrHasNoBootCode(img.disk))) {
      report.verdicts = report.verdicts.map((v) => withMbrVerdict(v, report, root.partition!));
    }
    return { file: img.file, format: img.detection.format, partition: root.partition ?? null, report };
  } finally {
    await ext.close();
  }
}
