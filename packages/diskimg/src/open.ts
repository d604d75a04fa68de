import { dirname, isAbsolute, join } from 'node:path';
import { FileDevice, ImageError, NamedErrorsDevice, inFile, type BlockDevice, type FileIdentity } from '@amitrans/block';
import { bundlePrivateKeyPath, isBundleManifest, unbundleToTemp } from './bundle.js';
import { decompressToTemp, type TempImage } from './decompress.js';
import { detectDevice, readHeadTail, probeDrivers, type Detection } from './detect.js';
import type { Compression } from './sniff.js';

export interface OpenedImage {
  readonly file: string;
  readonly detection: Detection;
  /** Set when the file was compressed; `detection` then describes what was inside. */
  readonly compression?: Compression;
  /** The virtual disk, read-only. */
  readonly disk: BlockDevice;
  /** True when `disk` has no allocation map of its own (raw): callers may add zero detection. */
  readonly mapless: boolean;
  /** Every file the image was read from (the image, its extents): no output may be one of them. */
  readonly files: readonly FileIdentity[];
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Progress of decompressing a compressed input, in decompressed bytes. */
  decompressProgress?: (done: number) => void;
  /** The private key that opens a bundle input (default: EUCA_PRIVATE_KEY, EC2_PRIVATE_KEY). */
  privateKey?: string | undefined;
}

const COMPRESSIONS = new Set(['gzip', 'bzip2', 'xz', 'zstd']);

/**
 * Open any image file read-only as its virtual disk. The file is never opened for writing;
 * edits go to a CowOverlay over `disk`. A compressed file is decompressed into a sparse
 * temporary file first (removed on close).
 */
export async function openImage(path: string, options: OpenOptions = {}): Promise<OpenedImage> {
  // A bundle (manifest.xml with its parts beside it) is unbundled into a sparse temporary.
  if (await isBundleManifest(path)) {
    return openTemp(path, await unbundleToTemp(path, bundlePrivateKeyPath(options.privateKey), options.decompressProgress));
  }
  const file = await FileDevice.open(path);
  let detection: Detection;
  try {
    detection = await inFile(path, () => detectDevice(file));
  } catch (err) {
    await file.close();
    throw err;
  }
  if (COMPRESSIONS.has(detection.format)) {
    await file.close();
    const compression = detection.format as Compression;
    const temp = await decompressToTemp(path, compression, options.decompressProgress);
    try {
      const inner = await openContainer(temp.path, await FileDevice.open(temp.path), path);
      return {
        ...inner,
        file: path,
        files: [file.identity],
        compression,
        close: async () => {
          await inner.close();
          await temp.remove();
        },
      };
    } catch (err) {
      await temp.remove();
      throw err instanceof ImageError ? err.inFile(path) : err;
    }
  }
  return openContainer(path, file, path, detection);
}

/** An image read from a temporary made out of `path` (removed on close). */
async function openTemp(path: string, temp: TempImage): Promise<OpenedImage> {
  try {
    const manifest = await FileDevice.open(path);
    const identity = manifest.identity;
    await manifest.close();
    const inner = await openContainer(temp.path, await FileDevice.open(temp.path), path);
    return {
      ...inner,
      file: path,
      files: [identity],
      close: async () => {
        await inner.close();
        await temp.remove();
      },
    };
  } catch (err) {
    await temp.remove();
    throw err instanceof ImageError ? err.inFile(path) : err;
  }
}

async function openContainer(path: string, file: FileDevice, displayPath: string, known?: Detection): Promise<OpenedImage> {
  const opened: BlockDevice[] = [file];
  const files: FileIdentity[] = [file.identity];
  const closeAll = async (): Promise<void> => {
    for (const d of opened.reverse()) await d.close().catch(() => undefined);
  };
  try {
    return await inFile(displayPath, async () => {
      const detection = known ?? (await detectDevice(file));
      if (detection.format === 'raw') return { file: displayPath, detection, disk: file, mapless: true, files, close: closeAll };
      if (COMPRESSIONS.has(detection.format)) {
        throw new ImageError('E_UNSUPPORTED', `a ${detection.format} stream inside a compressed file is not supported`);
      }
      const { head, tail } = await readHeadTail(file);
      const probed = probeDrivers({ head, tail, size: file.size });
      if (!probed?.driver.open) {
        throw new ImageError('E_UNSUPPORTED', `${describe(detection)} images cannot be read yet`, { structure: detection.format });
      }
      const disk = await probed.driver.open(file, {
        file: displayPath,
        openRelated: async (name: string) => {
          const related = await FileDevice.open(isAbsolute(name) ? name : join(dirname(path), name));
          opened.push(related);
          files.push(related.identity);
          return related;
        },
      });
      opened.push(disk);
      // Tables read later (a qcow2 L2 table in the middle of a copy) name the file too.
      return { file: displayPath, detection, disk: new NamedErrorsDevice(disk, displayPath), mapless: false, files, close: closeAll };
    });
  } catch (err) {
    await closeAll();
    throw err;
  }
}

export function describe(d: Detection): string {
  return d.subformat ? `${d.format} (${d.subformat})` : d.format;
}
