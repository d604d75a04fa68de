import { createCipheriv, createHash, type KeyObject } from 'node:crypto';
import { ImageError, mergeExtents, readAhead, type BlockDevice, type ReadPlan, type ProgressOptions, type Range } from '@amitrans/block';
import { GZIP_BLOCK, ParallelGzip } from './gzip.js';
import { newBundleKey, signHex, wrapHex, type BundleKey } from './keys.js';
import { manifestXml, type BlockDeviceMapping, type ImageType, type ManifestFields } from './manifest.js';
import { PartSplitter, type BundleDestination, type PartRecord } from './parts.js';
import { tarHeader, tarTailLength } from './tar.js';

export const DEFAULT_PART_SIZE = 10 * 1024 * 1024;
/** EC2's instance-store limit: euca2ools warns above it. */
export const EC2_BUNDLE_SIZE_LIMIT = 10 * 2 ** 30;

export interface BundleOptions extends ProgressOptions {
  /** The bundle's name: the tar member, the part and manifest file names. */
  readonly prefix: string;
  readonly architecture: string;
  /** The account id (dashes are stripped). */
  readonly user: string;
  readonly imageType?: ImageType;
  readonly kernelId?: string | undefined;
  readonly ramdiskId?: string | undefined;
  readonly blockDeviceMappings?: readonly BlockDeviceMapping[];
  readonly productCodes?: readonly string[];
  /** The cloud's certificate: it unwraps the key on the node controller. */
  readonly ec2Cert: KeyObject;
  /** The user's certificate: lets the user unbundle; empty user_* elements without it. */
  readonly userCert?: KeyObject | undefined;
  /** Signs the manifest; `UNSIGNED` without it. */
  readonly privateKey?: KeyObject | undefined;
  readonly partSize?: number;
  /** The AES key and IV (random by default). */
  readonly key?: BundleKey;
  readonly bundler?: { name: string; version: string; release: string };
}

export interface BundleResult {
  readonly manifest: string;
  readonly manifestName: string;
  readonly prefix: string;
  readonly imageType: ImageType;
  readonly size: number;
  readonly bundledSize: number;
  /** Hex SHA-1 of the tar stream (the manifest's image digest). */
  readonly digest: string;
  readonly parts: readonly PartRecord[];
  /** Bytes read from the image; the rest of it was unallocated or free and read as zeros. */
  readonly bytesRead: number;
  readonly signed: boolean;
  readonly warnings: string[];
}

/**
 * Bundle a device in one pass: tar (one member) -> SHA-1 -> gzip on every core ->
 * AES-128-CBC -> parts with their SHA-1s -> manifest, last. Ranges the device maps as
 * unallocated or zero are never read; nothing is spooled.
 */
export async function bundleDevice(device: BlockDevice, dest: BundleDestination, options: BundleOptions): Promise<BundleResult> {
  let o: CheckedOptions;
  try {
    o = checkOptions(options);
  } catch (err) {
    await dest.abort();
    throw err;
  }
  const key = options.key ?? newBundleKey();
  const header = tarHeader(o.prefix, device.size);
  const splitter = new PartSplitter(dest, o.prefix, o.partSize);
  const cipher = createCipheriv('aes-128-cbc', Buffer.from(key.key, 'hex'), Buffer.from(key.iv, 'hex'));
  const gzip = new ParallelGzip(async (chunk) => {
    const enc = cipher.update(chunk);
    if (enc.length > 0) await splitter.write(enc);
  });
  const tarHash = createHash('sha1');
  const feed = async (data: Uint8Array): Promise<void> => {
    tarHash.update(data);
    await gzip.write(data);
  };
  try {
    await feed(header);
    const bytesRead = await feedDevice(device, feed, options);
    await feed(new Uint8Array(tarTailLength(device.size)));
    await gzip.end();
    await splitter.write(cipher.final());
    await splitter.end();
    const fields: ManifestFields = {
      bundler: options.bundler ?? { name: 'amitrans', version: '0.1.0', release: '0' },
      architecture: o.architecture,
      blockDeviceMappings: o.imageType === 'machine' ? (options.blockDeviceMappings ?? []) : [],
      productCodes: options.productCodes ?? [],
      kernelId: o.kernelId,
      ramdiskId: o.ramdiskId,
      name: o.prefix,
      user: o.user,
      imageType: o.imageType,
      digest: tarHash.digest('hex'),
      digestAlgorithm: 'SHA1',
      size: device.size,
      bundledSize: splitter.bytes,
      encryptionAlgorithm: 'AES-128-CBC',
      ec2EncryptedKey: wrapHex(key.key, options.ec2Cert),
      userEncryptedKey: options.userCert ? wrapHex(key.key, options.userCert) : '',
      ec2EncryptedIv: wrapHex(key.iv, options.ec2Cert),
      userEncryptedIv: options.userCert ? wrapHex(key.iv, options.userCert) : '',
      parts: splitter.parts.map((p) => ({ index: p.index, filename: p.filename, digest: p.digest })),
    };
    const pk = options.privateKey;
    const text = manifestXml(fields, pk ? (signed) => signHex(signed, pk) : undefined);
    const manifestName = `${o.prefix}.manifest.xml`;
    const manifest = await dest.writeManifest(manifestName, text);
    await dest.commit();
    return {
      manifest,
      manifestName,
      prefix: o.prefix,
      imageType: o.imageType,
      size: device.size,
      bundledSize: splitter.bytes,
      digest: fields.digest,
      parts: splitter.parts,
      bytesRead,
      signed: pk !== undefined,
      warnings: device.size > EC2_BUNDLE_SIZE_LIMIT ? [`the image (${device.size} bytes) is above EC2's ${EC2_BUNDLE_SIZE_LIMIT}-byte instance-store limit`] : [],
    };
  } catch (err) {
    await gzip.settle();
    await dest.abort();
    throw err;
  }
}

interface CheckedOptions {
  prefix: string;
  architecture: string;
  user: string;
  imageType: ImageType;
  kernelId: string | undefined;
  ramdiskId: string | undefined;
  partSize: number;
}

/** euca2ools' rules (configure_bundle_properties): kernel and ramdisk bundles mark themselves with "true". */
function checkOptions(o: BundleOptions): CheckedOptions {
  let imageType: ImageType = o.imageType ?? 'machine';
  if (o.kernelId === 'true') imageType = 'kernel';
  if (o.ramdiskId === 'true') imageType = 'ramdisk';
  const usage = (detail: string): ImageError => new ImageError('E_USAGE', detail);
  if (imageType === 'kernel' && o.ramdiskId) throw usage('a kernel bundle takes no --ramdisk');
  if (imageType === 'ramdisk' && o.kernelId && o.kernelId !== 'true') throw usage('a ramdisk bundle takes no --kernel');
  if (imageType !== 'machine' && (o.blockDeviceMappings?.length ?? 0) > 0) throw usage(`a ${imageType} bundle takes no block device mappings`);
  const partSize = o.partSize ?? DEFAULT_PART_SIZE;
  if (!Number.isSafeInteger(partSize) || partSize < 1) throw usage(`part size ${partSize} is not a positive number of bytes`);
  const user = o.user.replace(/-/g, '');
  if (user === '') throw usage('missing account ID; give one with --user or EC2_USER_ID');
  if (/[/\\\0]/.test(o.prefix) || o.prefix === '.' || o.prefix === '..') throw usage(`bundle prefix ${JSON.stringify(o.prefix)} must be a plain file name`);
  return {
    prefix: o.prefix,
    architecture: o.architecture,
    user,
    imageType,
    kernelId: imageType === 'kernel' ? 'true' : o.kernelId,
    ramdiskId: imageType === 'ramdisk' ? 'true' : o.ramdiskId,
    partSize,
  };
}

/** Feed the device's bytes in order; returns how many were read (the rest are zeros). */
async function feedDevice(device: BlockDevice, feed: (data: Uint8Array) => Promise<void>, options: BundleOptions): Promise<number> {
  let bytesRead = 0;
  for await (const w of readAhead(device, windows(device), { maxLength: GZIP_BLOCK, depth: 3, signal: options.signal })) {
    await feed(w.data);
    bytesRead += w.bytesRead;
    options.progress?.(w.offset + w.length, device.size);
  }
  return bytesRead;
}

/** Windows of GZIP_BLOCK bytes over the whole device; only 'data' extents in each are read. */
async function* windows(device: BlockDevice): AsyncIterable<ReadPlan> {
  let pieces: Range[] = [];
  let start = 0;
  const flushTo = function* (end: number): Iterable<ReadPlan> {
    while (start + GZIP_BLOCK <= end) {
      const wEnd = start + GZIP_BLOCK;
      yield { offset: start, length: GZIP_BLOCK, pieces: clip(pieces, start, wEnd) };
      pieces = pieces.filter((p) => p.offset + p.length > wEnd);
      start = wEnd;
    }
  };
  for await (const e of mergeExtents(device.extents())) {
    if (e.kind === 'data') pieces.push({ offset: e.offset, length: e.length });
    yield* flushTo(e.offset + e.length);
  }
  if (start < device.size) yield { offset: start, length: device.size - start, pieces: clip(pieces, start, device.size) };
}

function clip(pieces: readonly Range[], start: number, end: number): Range[] {
  const out: Range[] = [];
  for (const p of pieces) {
    const a = Math.max(p.offset, start);
    const b = Math.min(p.offset + p.length, end);
    if (b > a) out.push({ offset: a, length: b - a });
  }
  return out;
}
