import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CoalescingSink, ConcatDevice, FileSink, ImageError, MaskedDevice, SliceDevice, makeTempDir, removeTempDir, type BlockDevice } from '@amitrans/block';
import { DirectorySource, MAX_MANIFEST_BYTES, S3PartSource, SinkTarget, privateKey, readManifestFile, readManifestS3, unbundle } from '@amitrans/bundle';
import { ExtFs } from '@amitrans/extfs';
import { detectArch, extGuestFs } from '@amitrans/guest';
import { readPartitionTable } from '@amitrans/mbr';
import { displayName, isRemote, parseRemote, type RemoteOptions } from '@amitrans/remote';
import type { TempImage } from './decompress.js';
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
export async function openForBundle(path: string, remote?: RemoteOptions): Promise<BundleSource> {
  const image = await openImage(path, remote ? { remote } : {});
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

/** Where an unbundle-for-reading gets its key: the option, else euca2ools' variables. */
export function bundlePrivateKeyPath(explicit?: string): string | undefined {
  return explicit ?? process.env.EUCA_PRIVATE_KEY ?? process.env.EC2_PRIVATE_KEY;
}

/**
 * A bundle manifest: in S3, an object named *.manifest.xml (the name is all a ranged
 * store tells for free); on disk, by its first bytes, an XML document whose root is <manifest>.
 */
export async function isBundleManifest(path: string): Promise<boolean> {
  if (isRemote(path)) return parseRemote(path).kind === 's3' && /\.manifest\.xml$/i.test(path);
  // Only a regular file can be a manifest: a FIFO must not be opened (that waits for a
  // writer) and devices and directories are for FileDevice.open to refuse, with its words.
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile() || st.size > MAX_MANIFEST_BYTES) return false;
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return false;
  }
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const text = head.subarray(0, bytesRead).toString('latin1').replace(/^\uFEFF?\s*/, '').replace(/^<\?xml[^>]*\?>\s*/, '');
    return text.startsWith('<manifest>') || text.startsWith('<manifest ');
  } catch {
    return false;
  } finally {
    await fh.close();
  }
}

/**
 * Unbundle a manifest (parts beside it, on disk or in S3) into a sparse temporary file for
 * reading: each part's SHA-1, the key unwrapped with `keyPath`, and the tar stream's SHA-1
 * checked on the way. The caller removes the temporary. `storedSize` is the bundle's size.
 */
export async function unbundleToTemp(
  manifestPath: string, keyPath: string | undefined, o: { progress?: ((done: number) => void) | undefined; remote?: RemoteOptions | undefined } = {},
): Promise<TempImage & { storedSize: number }> {
  const progress = o.progress;
  if (!keyPath) {
    throw new ImageError('E_USAGE', `${displayName(manifestPath)} is a bundle manifest: reading it needs the private key of the user or the cloud (EC2_PRIVATE_KEY or EUCA_PRIVATE_KEY; unbundle takes -k)`);
  }
  let key;
  try {
    key = privateKey(await readFile(keyPath), keyPath);
  } catch (err) {
    if (err instanceof ImageError) throw err;
    throw new ImageError('E_IO', `cannot read the private key: ${(err as Error).message}`, { file: keyPath, cause: err });
  }
  const remote = isRemote(manifestPath);
  const parsed = remote ? await readManifestS3(manifestPath, o.remote) : await readManifestFile(manifestPath);
  const source = remote ? new S3PartSource(manifestPath, o.remote) : DirectorySource.besideManifest(manifestPath);
  const dir = await makeTempDir('unbundled');
  const remove = (): Promise<void> => removeTempDir(dir);
  try {
    const path = join(dir, 'unbundled.img');
    const sink = new CoalescingSink(await FileSink.create(path, { sync: false }));
    const target = new SinkTarget(sink);
    try {
      await unbundle(parsed, source, target, {
        privateKey: key,
        ...(progress ? { progress: (done: number) => progress(done) } : {}),
      });
      await target.finish();
      await sink.commit();
    } catch (err) {
      await sink.abort();
      throw err;
    }
    return { path, size: target.size, remove, storedSize: parsed.manifest.bundledSize };
  } catch (err) {
    await remove();
    throw err instanceof ImageError ? err.inFile(displayName(manifestPath)) : err;
  }
}
