import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { CoalescingSink, FileSink, ImageError } from '@amitrans/block';
import type { RemoteOptions } from '@amitrans/remote';
import {
  DirectoryDestination,
  DirectorySource,
  S3Destination,
  S3PartSource,
  readManifestS3,
  SinkTarget,
  bundleDevice,
  certificateKey,
  privateKey,
  readManifestFile,
  unbundle,
  verifyHex,
  type BlockDeviceMapping,
  type BundleAcl,
  type BundleDestination,
  type PartSource,
  type ParsedManifest,
  type ImageType,
} from '@amitrans/bundle';
import { convert, guardOutput, openForBundle, type TranslateBundleOptions } from '@amitrans/diskimg';
import { humanSize } from '../human.js';
import { line, type CliIo } from '../io.js';
import { Progress } from '../progress.js';

export interface BundleArgs {
  image: string;
  dest: string;
  /** --endpoint-url and --s3-path-style, for an s3:// image and an s3:// destination. */
  remote?: RemoteOptions;
  prefix?: string | undefined;
  arch?: string | undefined;
  kernel?: string | undefined;
  ramdisk?: string | undefined;
  mappings: string[];
  user?: string | undefined;
  cert?: string | undefined;
  privatekey?: string | undefined;
  ec2cert?: string | undefined;
  imageType?: ImageType | undefined;
  productcodes?: string | undefined;
  partSize?: number | undefined;
  acl?: BundleAcl | undefined;
  progress: boolean;
  json: boolean;
}

/** What euca2ools reads from the environment when a flag is absent (mixins.py). */
export function credentialsFromEnv(env: NodeJS.ProcessEnv, a: { user?: string | undefined; cert?: string | undefined; privatekey?: string | undefined; ec2cert?: string | undefined }): {
  user: string | undefined; cert: string | undefined; privatekey: string | undefined; ec2cert: string | undefined;
} {
  return {
    user: a.user ?? env.EC2_USER_ID,
    cert: a.cert ?? env.EC2_CERT ?? env.EUCA_CERT,
    // euca2ools lets EUCA_PRIVATE_KEY (the node controller's) win over EC2_PRIVATE_KEY.
    privatekey: a.privatekey ?? env.EUCA_PRIVATE_KEY ?? env.EC2_PRIVATE_KEY,
    ec2cert: a.ec2cert ?? env.EUCALYPTUS_CERT,
  };
}

/** `-B ami=sda1,root=/dev/sda1` (repeatable) as mappings. */
export function parseMappings(list: readonly string[]): BlockDeviceMapping[] {
  const out: BlockDeviceMapping[] = [];
  for (const item of list) {
    for (const pair of item.split(',')) {
      if (!pair) continue;
      const eq = pair.indexOf('=');
      if (eq <= 0 || eq === pair.length - 1) throw new ImageError('E_USAGE', `block device mapping '${pair}' is not VIRTUAL=DEVICE`);
      out.push({ virtual: pair.slice(0, eq), device: pair.slice(eq + 1) });
    }
  }
  return out;
}

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new ImageError('E_IO', `cannot read the ${what}: ${(err as Error).message}`, { file: path, cause: err });
  }
}

async function certAt(path: string | undefined, what: string): Promise<KeyObject | undefined> {
  return path === undefined ? undefined : certificateKey(await readPem(path, what), path);
}

async function keyAt(path: string | undefined): Promise<KeyObject | undefined> {
  return path === undefined ? undefined : privateKey(await readPem(path, 'private key'), path);
}

export async function bundleCommand(args: BundleArgs, io: CliIo, signal: AbortSignal): Promise<void> {
  const creds = credentialsFromEnv(process.env, args);
  if (!creds.ec2cert) throw new ImageError('E_USAGE', "missing cloud certificate; give one with --ec2cert or EUCALYPTUS_CERT");
  if (!creds.user) throw new ImageError('E_USAGE', 'missing account ID; give one with --user or EC2_USER_ID');
  const mappings = parseMappings(args.mappings);
  const ec2Cert = (await certAt(creds.ec2cert, 'cloud certificate'))!;
  const userCert = await certAt(creds.cert, 'user certificate');
  const signer = await keyAt(creds.privatekey);
  const source = await openForBundle(args.image, args.remote);
  const progress = new Progress(io, args.progress || (io.stderr.isTTY === true && !args.json));
  try {
    const architecture = args.arch ?? source.architecture;
    if (!architecture) throw new ImageError('E_USAGE', `cannot tell the architecture of ${args.image}; give it with --arch`);
    const prefix = args.prefix ?? basename(args.image);
    const remote = /^s3:\/\//i.test(args.dest);
    if (args.acl && !remote) throw new ImageError('E_USAGE', '--acl is for s3:// destinations');
    const dest: BundleDestination = remote
      ? await S3Destination.create(args.dest, { ...args.remote, ...(args.acl ? { acl: args.acl } : {}), signal })
      : await DirectoryDestination.create(args.dest, prefix);
    const result = await bundleDevice(source.device, dest, {
      prefix,
      architecture,
      user: creds.user,
      imageType: args.imageType,
      kernelId: args.kernel,
      ramdiskId: args.ramdisk,
      blockDeviceMappings: mappings,
      productCodes: args.productcodes ? args.productcodes.split(',').filter((c) => c !== '') : [],
      ec2Cert,
      userCert,
      privateKey: signer,
      ...(args.partSize !== undefined ? { partSize: args.partSize } : {}),
      signal,
      progress: (done, total) => progress.update('bundle', done, total),
    });
    progress.finish();
    if (args.json) {
      line(io.stdout, JSON.stringify({ ...result, architecture, freeBytesZeroed: source.freeBytes }, null, 2));
      return;
    }
    line(io.stdout, `${result.manifest}: ${result.imageType} bundle of ${humanSize(result.size)} in ${result.parts.length} part${result.parts.length === 1 ? '' : 's'} ` +
      `(${humanSize(result.bundledSize)}), ${result.signed ? 'signed' : 'UNSIGNED'}${userCert ? '' : ', no user certificate: only the cloud can unbundle it'}`);
    line(io.stdout, `image sha1 (tar stream): ${result.digest}`);
    if (source.freeBytes > 0) line(io.stdout, `free filesystem blocks bundled as zeros: ${humanSize(source.freeBytes)}`);
    for (const w of result.warnings) line(io.stderr, `warning: ${w}`);
  } finally {
    progress.finish();
    await source.close();
  }
}

export interface UnbundleArgs {
  manifest: string;
  output: string;
  /** --endpoint-url and --s3-path-style, for an s3:// manifest and its parts. */
  remote?: RemoteOptions;
  privatekey?: string | undefined;
  cert?: string | undefined;
  format?: string | undefined;
  progress: boolean;
  json: boolean;
}

export async function unbundleCommand(args: UnbundleArgs, io: CliIo, signal: AbortSignal): Promise<void> {
  const creds = credentialsFromEnv(process.env, { privatekey: args.privatekey });
  const key = await keyAt(creds.privatekey);
  if (!key) throw new ImageError('E_USAGE', 'unbundling needs the private key of the user or the cloud: give it with --privatekey or EC2_PRIVATE_KEY');
  const cert = await certAt(args.cert, 'certificate');
  const remote = /^s3:\/\//i.test(args.manifest);
  const parsed = remote ? await readManifestS3(args.manifest, args.remote) : await readManifestFile(args.manifest);
  const source: PartSource = remote ? new S3PartSource(args.manifest, args.remote) : DirectorySource.besideManifest(args.manifest);
  // The output replaces neither the manifest nor one of its parts.
  if (!remote) await guardOutput(args.output, [args.manifest, ...parsed.manifest.parts.map((p) => source.location(p.filename))]);
  if (args.format !== undefined && args.format !== 'raw') {
    await unbundleConverted(args, creds.privatekey!, cert, parsed, io, signal);
    return;
  }
  const progress = new Progress(io, args.progress || (io.stderr.isTTY === true && !args.json));
  const file = await FileSink.create(args.output);
  const sink = new CoalescingSink(file);
  try {
    const target = new SinkTarget(sink);
    const result = await unbundle(parsed, source, target, {
      privateKey: key,
      cert,
      signal,
      progress: (done, total) => progress.update('unbundle', done, total),
    });
    await target.finish();
    await sink.commit();
    progress.finish();
    if (args.json) {
      line(io.stdout, JSON.stringify({ output: args.output, ...result }, null, 2));
      return;
    }
    line(io.stdout, `${args.output}: ${humanSize(result.size)} raw image "${result.name}" from ${result.parts} part${result.parts === 1 ? '' : 's'}; ` +
      `key from <${result.keyFrom}_encrypted_key>; signature ${result.signature}; sha1 ${result.digest} checked`);
    for (const w of result.warnings) line(io.stderr, `warning: ${w}`);
  } catch (err) {
    await sink.abort();
    throw err instanceof ImageError ? err.inFile(args.manifest) : err;
  } finally {
    progress.finish();
  }
}

/** `unbundle -O qcow2`: the raw image goes to a sparse temporary, then through convert. */
async function unbundleConverted(args: UnbundleArgs, keyPath: string, cert: KeyObject | undefined, parsed: ParsedManifest, io: CliIo, signal: AbortSignal): Promise<void> {
  if (cert && !verifyHex(parsed.signedText, parsed.manifest.signature, cert)) {
    throw new ImageError('E_BAD_KEY', 'the signature does not verify with the certificate over <machine_configuration> and <image>', { file: args.manifest, structure: 'manifest <signature>' });
  }
  const progress = new Progress(io, args.progress || (io.stderr.isTTY === true && !args.json));
  try {
    const result = await convert(args.manifest, args.output, {
      format: args.format!,
      privateKey: keyPath,
      ...(args.remote ? { remote: args.remote } : {}),
      signal,
      progress: (stage, done, total) => progress.update(stage === 'decompress' ? 'unbundle' : stage, done, total === 0 ? parsed.manifest.bundledSize : total),
    });
    progress.finish();
    if (args.json) line(io.stdout, JSON.stringify({ ...result, name: parsed.manifest.name, signature: cert ? 'verified' : 'not checked' }, null, 2));
    else line(io.stdout, `${result.output}: ${result.format}, ${humanSize(result.virtualSize)} image "${parsed.manifest.name}" unbundled from ${parsed.manifest.parts.length} parts; signature ${cert ? 'verified' : 'not checked'}`);
  } finally {
    progress.finish();
  }
}

/** translate -O bundle's flags. */
export interface TranslateBundleArgs {
  user?: string | undefined;
  ec2cert?: string | undefined;
  cert?: string | undefined;
  privatekey?: string | undefined;
  prefix?: string | undefined;
  partSize?: number | undefined;
  acl?: BundleAcl | undefined;
}

/** Credentials for translate -O bundle, flags first, then euca2ools' variables. */
export async function translateBundleOptions(a: TranslateBundleArgs): Promise<TranslateBundleOptions> {
  const creds = credentialsFromEnv(process.env, a);
  if (!creds.ec2cert) throw new ImageError('E_USAGE', "-O bundle needs the cloud certificate: give it with --ec2cert or EUCALYPTUS_CERT");
  if (!creds.user) throw new ImageError('E_USAGE', '-O bundle needs the account ID: give it with --user or EC2_USER_ID');
  return {
    user: creds.user,
    ec2Cert: (await certAt(creds.ec2cert, 'cloud certificate'))!,
    userCert: await certAt(creds.cert, 'user certificate'),
    privateKey: await keyAt(creds.privatekey),
    prefix: a.prefix,
    partSize: a.partSize,
    acl: a.acl,
  };
}
