import { dirname, isAbsolute, join, posix } from 'node:path';
import { stat } from 'node:fs/promises';
import { FileDevice, ImageError, NamedErrorsDevice, identityOf, inFile, type BlockDevice, type FileIdentity } from '@amitrans/block';
import { displayName, isRemote, openRemote, type RemoteOptions } from '@amitrans/remote';
import { bundlePrivateKeyPath, isBundleManifest, unbundleToTemp } from './bundle.js';
import { decompressToTemp, type TempImage } from './decompress.js';
import { detectDevice, type Detection } from './detect.js';
import type { Compression } from './sniff.js';

export interface OpenedImage {
  /** The input as it may be printed (a URL without credentials). */
  readonly file: string;
  readonly detection: Detection;
  /** Set when the file was compressed; `detection` then describes what was inside. */
  readonly compression?: Compression;
  /** The virtual disk, read-only. */
  readonly disk: BlockDevice;
  /** True when `disk` has no allocation map of its own (raw): callers may add zero detection. */
  readonly mapless: boolean;
  /** Every local file the image was read from (the image, its extents): no output may be one of them. */
  readonly files: readonly FileIdentity[];
  /** Bytes of the container as stored (the file or object, compressed or not). */
  readonly storedSize: number;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Progress of decompressing a compressed input, in decompressed bytes. */
  decompressProgress?: (done: number) => void;
  /** How s3:// and http(s):// inputs are reached (endpoint, path style, retries). */
  remote?: RemoteOptions;
  /** The name a BlockDevice input is shown under (default '<device>'). */
  name?: string;
  /** The private key that opens a bundle input (default: EUCA_PRIVATE_KEY, EC2_PRIVATE_KEY). */
  privateKey?: string | undefined;
}

/**
 * An image to read: a local path, an s3:// or http(s):// URL, or a device already open.
 * A device stays the caller's: the functions that take one read it and never close it.
 */
export type ImageInput = string | BlockDevice;

/**
 * How an input is named in messages and results: a path, a URL without its credentials,
 * or for a device the name the caller gave it (a device has no name of its own).
 */
export function inputName(input: ImageInput, name?: string): string {
  return typeof input === 'string' ? displayName(input) : (name ?? '<device>');
}

const COMPRESSIONS = new Set(['gzip', 'bzip2', 'xz', 'zstd']);

/** Where the container's bytes come from, and how to open the files it names (VMDK extents). */
interface Source {
  readonly name: string;
  readonly device: BlockDevice;
  readonly identity?: FileIdentity;
  /** Close the device when the image is closed (not for a device the caller handed us). */
  readonly owned: boolean;
  openRelated(name: string): Promise<{ device: BlockDevice; identity?: FileIdentity }>;
}

async function openSource(input: ImageInput, options: OpenOptions): Promise<Source> {
  if (typeof input !== 'string') {
    const name = inputName(input, options.name);
    return { name, device: input, owned: false, openRelated: () => Promise.reject(new ImageError('E_UNSUPPORTED', 'an image opened from a device cannot name other files', { file: name })) };
  }
  if (isRemote(input)) {
    const device = await openRemote(input, options.remote);
    return {
      name: displayName(input),
      device,
      owned: true,
      // A descriptor's extent names are relative to the descriptor's URL.
      openRelated: async (name) => ({ device: await openRemote(relatedUrl(input, name), options.remote) }),
    };
  }
  const file = await FileDevice.open(input);
  return {
    name: input,
    device: file,
    identity: file.identity,
    owned: true,
    openRelated: async (name) => {
      const related = await FileDevice.open(isAbsolute(name) ? name : join(dirname(input), name));
      return { device: related, identity: related.identity };
    },
  };
}

/** A file named by a remote descriptor (a VMDK extent), beside it in the same bucket or site. */
function relatedUrl(base: string, name: string): string {
  if (/^s3:\/\//i.test(base)) return isRemote(name) ? name : posix.join(posix.dirname(base.replace(/^s3:\/\//i, '/')), name).replace(/^\//, 's3://');
  return new URL(name, base).toString();
}

/**
 * Open any image read-only as its virtual disk: a file, an s3:// or http(s):// URL (read
 * by ranges, never copied whole), or a BlockDevice. The input is never opened for
 * writing; edits go to a CowOverlay over `disk`. A compressed input is decompressed, as
 * a stream, into a sparse temporary file first (removed on close): a compressed stream
 * has no random access, so this is the one case where a local copy is made.
 */
export async function openImage(input: ImageInput, options: OpenOptions = {}): Promise<OpenedImage> {
  // A bundle (a manifest with its parts beside it, on disk or in S3) is unbundled into a sparse temporary.
  if (typeof input === 'string' && (await isBundleManifest(input))) return openBundle(input, options);
  const source = await openSource(input, options);
  let detection: Detection;
  try {
    detection = await inFile(source.name, () => detectDevice(source.device));
  } catch (err) {
    if (source.owned) await source.device.close();
    throw err;
  }
  if (!COMPRESSIONS.has(detection.format)) return openContainer(source, detection);
  const compression = detection.format as Compression;
  let temp;
  try {
    temp = await decompressToTemp(typeof input === 'string' && !isRemote(input) ? input : { device: source.device, name: source.name }, compression, options.decompressProgress);
  } finally {
    if (source.owned) await source.device.close();
  }
  try {
    const file = await FileDevice.open(temp.path);
    const inner = await openContainer({ ...source, device: file, owned: true }, undefined);
    return {
      ...inner,
      files: source.identity ? [source.identity] : [],
      storedSize: source.device.size,
      compression,
      close: async () => {
        await inner.close();
        await temp.remove();
      },
    };
  } catch (err) {
    await temp.remove();
    throw err instanceof ImageError ? err.inFile(source.name) : err;
  }
}

/** A bundle, read through a sparse temporary unbundled from it (removed on close). */
async function openBundle(manifest: string, options: OpenOptions): Promise<OpenedImage> {
  const keyPath = bundlePrivateKeyPath(options.privateKey);
  const temp: TempImage & { storedSize: number } = await unbundleToTemp(manifest, keyPath, { progress: options.decompressProgress, remote: options.remote });
  try {
    const identity = isRemote(manifest) ? undefined : identityOf(manifest, await stat(manifest));
    const name = displayName(manifest);
    const noRelated = (): Promise<never> => Promise.reject(new ImageError('E_UNSUPPORTED', 'a bundled image cannot name other files', { file: name }));
    const inner = await openContainer({ name, device: await FileDevice.open(temp.path), owned: true, openRelated: noRelated }, undefined);
    return {
      ...inner,
      files: identity ? [identity] : [],
      storedSize: temp.storedSize,
      close: async () => {
        await inner.close();
        await temp.remove();
      },
    };
  } catch (err) {
    await temp.remove();
    throw err instanceof ImageError ? err.inFile(displayName(manifest)) : err;
  }
}

async function openContainer(source: Source, known: Detection | undefined): Promise<OpenedImage> {
  const file = source.device;
  const opened: BlockDevice[] = source.owned ? [file] : [];
  const files: FileIdentity[] = source.identity ? [source.identity] : [];
  const closeAll = async (): Promise<void> => {
    for (const d of opened.reverse()) await d.close().catch(() => undefined);
  };
  const base = { file: source.name, files, storedSize: file.size, close: closeAll };
  try {
    return await inFile(source.name, async () => {
      const detection = known ?? (await detectDevice(file));
      const driver = detection.driver;
      if (driver === undefined) {
        throw new ImageError('E_UNSUPPORTED', `a ${detection.format} stream inside a compressed file is not supported`);
      }
      if (!driver.open) {
        throw new ImageError('E_UNSUPPORTED', `${describe(detection)} images cannot be read yet`, { structure: detection.format });
      }
      const disk = await driver.open(file, {
        file: source.name,
        openRelated: async (name: string) => {
          const related = await source.openRelated(name);
          opened.push(related.device);
          if (related.identity) files.push(related.identity);
          return related.device;
        },
      });
      // A container that is its own disk (raw) has no allocation map: callers may add zero detection.
      if (disk === file) return { ...base, detection, disk: file, mapless: true };
      opened.push(disk);
      // Tables read later (a qcow2 L2 entry in the middle of a copy) name the file too.
      return { ...base, detection, disk: new NamedErrorsDevice(disk, source.name), mapless: false };
    });
  } catch (err) {
    await closeAll();
    throw err;
  }
}

export function describe(d: Detection): string {
  return d.subformat ? `${d.format} (${d.subformat})` : d.format;
}
