import { ConcatDevice, ImageError, MaskedDevice, SliceDevice, type BlockDevice } from '@amitrans/block';
import { ExtFs } from '@amitrans/extfs';
import { detectArch, extGuestFs } from '@amitrans/guest';
import { readPartitionTable } from '@amitrans/mbr';
import { findRoot } from './inspect.js';
import { openImage, type OpenedImage } from './open.js';

/** An image opened for bundling: its disk with free filesystem blocks read as zeros. */
export interface BundleSource {
  readonly image: OpenedImage;
  readonly device: BlockDevice;
  /** The guest's architecture in euca2ools' words, when the root filesystem tells it. */
  readonly architecture: string | undefined;
  /** Bytes of the root filesystem's free blocks that read as zeros. */
  readonly freeBytes: number;
  close(): Promise<void>;
}

/** Our architecture names to euca2ools' -r choices. */
const EUCA_ARCH: Record<string, string | undefined> = { x86_64: 'x86_64', i386: 'i386', arm: 'armhf' };

/**
 * Open any image for `bundle`: the free blocks of its ext root filesystem (bare or in a
 * partition) read as zeros and are never read (what zerofree did by hand before
 * bundling), so stale deleted data stays out of the bundle and the bundle is smaller.
 * An image with no ext filesystem amitrans can open is bundled byte for byte.
 */
export async function openForBundle(path: string): Promise<BundleSource> {
  const image = await openImage(path);
  try {
    const root = await findRoot(image).catch((err: unknown) => {
      if (err instanceof ImageError) return undefined;
      throw err;
    });
    if (!root) return { image, device: image.disk, architecture: undefined, freeBytes: 0, close: () => image.close() };
    const ext = await ExtFs.open(root.device);
    let architecture: string | undefined;
    let free: { offset: number; length: number }[];
    try {
      free = await ext.freeRanges();
      const { arch } = await detectArch(extGuestFs(ext)).catch(() => ({ arch: 'unknown' }));
      architecture = EUCA_ARCH[arch];
    } finally {
      await ext.close();
    }
    const masked = new MaskedDevice(root.device, free);
    let device: BlockDevice = masked;
    if (root.partition !== undefined) {
      const p = (await readPartitionTable(image.disk)).partitions.find((x) => x.index === root.partition)!;
      device = new ConcatDevice([
        new SliceDevice(image.disk, 0, p.start),
        masked,
        new SliceDevice(image.disk, p.start + p.size, image.disk.size - p.start - p.size),
      ]);
    }
    const freeBytes = free.reduce((a, r) => a + r.length, 0);
    return { image, device, architecture, freeBytes, close: () => image.close() };
  } catch (err) {
    await image.close();
    throw err instanceof ImageError ? err.inFile(path) : err;
  }
}
