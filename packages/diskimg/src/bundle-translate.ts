import type { KeyObject } from 'node:crypto';
import { basename } from 'node:path';
import { BaseDevice, ImageError, type BlockDevice } from '@amitrans/block';
import {
  DirectoryDestination,
  S3Destination,
  bundleDevice,
  parseBundleUrl,
  type BundleAcl,
  type BundleDestination,
  type BundleResult,
  type ImageType,
} from '@amitrans/bundle';
import type { GuestFs, GuestReport } from '@amitrans/guest';
import type { S3Options } from '@amitrans/remote';

/** What `translate -t eucalyptus -O bundle` needs beyond the translation. */
export interface TranslateBundleOptions {
  readonly user: string;
  readonly ec2Cert: KeyObject;
  readonly userCert?: KeyObject | undefined;
  readonly privateKey?: KeyObject | undefined;
  /** The EMI's name (default: the input's file name). */
  readonly prefix?: string | undefined;
  readonly architecture?: string | undefined;
  /** Registered ids to write into the EMI manifest (default: none, given at register). */
  readonly kernelId?: string | undefined;
  readonly ramdiskId?: string | undefined;
  readonly partSize?: number | undefined;
  readonly acl?: BundleAcl | undefined;
  /** How an s3:// destination is reached (its endpoint): translate's own remote options. */
  readonly remote?: S3Options | undefined;
}

export interface TranslateBundleResult {
  readonly emi: BundleResult;
  readonly eki: BundleResult;
  readonly eri: BundleResult;
  /** The register commands, in order, euca2ools and aws-cli forms. */
  readonly register: string[];
}

const ARCH: Record<string, string | undefined> = { x86_64: 'x86_64', i386: 'i386', arm: 'armhf' };

/** A regular file of the guest as a read-only device (the kernel, the initrd): never held whole. */
class GuestFileDevice extends BaseDevice {
  constructor(private readonly fs: GuestFs, private readonly path: string, size: number) {
    super(size, false, `guest file ${path}`);
  }
  protected async _read(buffer: Uint8Array, position: number): Promise<void> {
    const got = await this.fs.read(this.path, position, buffer.length);
    if (got.length !== buffer.length) throw new ImageError('E_TRUNCATED', `${this.path} ended at ${position + got.length}`, { structure: this.path });
    buffer.set(got);
  }
}

async function guestFile(fs: GuestFs, path: string): Promise<GuestFileDevice> {
  const st = await fs.lstat(path);
  if (!st || st.type !== 'file') throw new ImageError('E_UNSUPPORTED', `${path} is not a regular file in the guest`, { structure: path });
  return new GuestFileDevice(fs, path, st.size);
}

function named(file: string, wanted: 'vmlinuz' | 'initrd'): string {
  const base = basename(file);
  // Eucalyptus takes a bundle whose name starts with vmlinuz/initrd for a kernel/ramdisk.
  return base.startsWith(wanted) ? base : `${wanted}-${base}`;
}

/**
 * The EMI bundle of a translated root filesystem plus its own kernel and initrd as an EKI
 * and an ERI (Eucalyptus 4 registers a PV EMI only with both). The EMI manifest never keeps
 * an Amazon aki-/ari-: it carries the ids given, or none (they are given at register).
 */
export async function bundleTranslation(
  fs: GuestFs, root: BlockDevice, report: GuestReport, kernelVersion: string, input: string, dest: string, o: TranslateBundleOptions,
  progress?: (stage: string, done: number, total: number) => void, signal?: AbortSignal,
): Promise<TranslateBundleResult> {
  const kernel = report.kernels.find((k) => k.version === kernelVersion);
  if (!kernel?.initrd) {
    throw new ImageError('E_UNSUPPORTED', `kernel ${kernelVersion} has no initrd: Eucalyptus 4 registers a PV EMI only with an EKI and an ERI`);
  }
  const architecture = o.architecture ?? ARCH[report.arch];
  if (!architecture) throw new ImageError('E_USAGE', `the guest's architecture (${report.arch}) is not one Eucalyptus bundles; give it with --arch`);
  const emiName = o.prefix ?? basename(input).replace(/\.manifest\.xml$/, '');
  if (/^(vmlinuz|initrd)/.test(emiName)) throw new ImageError('E_USAGE', `an EMI named ${emiName} would be taken for a kernel or ramdisk by Eucalyptus; give another --prefix`);
  for (const [id, kind] of [[o.kernelId, 'eki'], [o.ramdiskId, 'eri']] as const) {
    if (id !== undefined && !new RegExp(`^${kind}-[0-9a-fA-F]{8}$`).test(id)) throw new ImageError('E_USAGE', `${id} is not an ${kind}- id`);
  }
  const common = { user: o.user, ec2Cert: o.ec2Cert, userCert: o.userCert, privateKey: o.privateKey, architecture, ...(o.partSize ? { partSize: o.partSize } : {}), signal };
  const one = async (device: BlockDevice, prefix: string, imageType: ImageType, extra: { kernelId?: string | undefined; ramdiskId?: string | undefined } = {}): Promise<BundleResult> => {
    const d: BundleDestination = /^s3:\/\//i.test(dest)
      ? await S3Destination.create(dest, { ...o.remote, ...(o.acl ? { acl: o.acl } : {}), signal })
      : await DirectoryDestination.create(dest, prefix);
    return bundleDevice(device, d, { ...common, prefix, imageType, ...extra, progress: (done, total) => progress?.(`bundle ${imageType}`, done, total) });
  };
  const eki = await one(await guestFile(fs, kernel.vmlinuz), named(kernel.vmlinuz, 'vmlinuz'), 'kernel');
  const eri = await one(await guestFile(fs, kernel.initrd), named(kernel.initrd, 'initrd'), 'ramdisk');
  const emi = await one(root, emiName, 'machine', { kernelId: o.kernelId, ramdiskId: o.ramdiskId });
  return { emi, eki, eri, register: registerCommands(dest, { emi, eki, eri }, architecture, o) };
}

/** euca-register and aws ec2 register-image, kernel and ramdisk first. */
function registerCommands(dest: string, b: { emi: BundleResult; eki: BundleResult; eri: BundleResult }, arch: string, o: TranslateBundleOptions): string[] {
  const where = /^s3:\/\//i.test(dest) ? (() => {
    const u = parseBundleUrl(dest);
    return `${u.bucket}/${u.prefix}`;
  })() : 'BUCKET/PREFIX/';
  const loc = (r: BundleResult): string => `${where}${r.manifestName}`;
  const kernel = o.kernelId ?? 'EKI_ID';
  const ramdisk = o.ramdiskId ?? 'ERI_ID';
  const out: string[] = [];
  if (!/^s3:\/\//i.test(dest)) out.push(`# upload first: euca-upload-bundle -b BUCKET/PREFIX -m ${b.emi.manifest} (and the EKI and ERI manifests), or bundle to s3://`);
  out.push(
    `euca-register ${loc(b.eki)} -n ${b.eki.prefix} -a ${arch}            # prints EKI_ID (admin only)`,
    `euca-register ${loc(b.eri)} -n ${b.eri.prefix} -a ${arch}            # prints ERI_ID (admin only)`,
    `euca-register ${loc(b.emi)} -n ${b.emi.prefix} -a ${arch} --kernel ${kernel} --ramdisk ${ramdisk} --virtualization-type paravirtual`,
    `aws ec2 register-image --endpoint-url "$EC2_URL" --image-location ${loc(b.eki)} --name ${b.eki.prefix} --architecture ${arch}`,
    `aws ec2 register-image --endpoint-url "$EC2_URL" --image-location ${loc(b.eri)} --name ${b.eri.prefix} --architecture ${arch}`,
    `aws ec2 register-image --endpoint-url "$EC2_URL" --image-location ${loc(b.emi)} --name ${b.emi.prefix} --architecture ${arch} ` +
      `--kernel-id ${kernel} --ramdisk-id ${ramdisk} --virtualization-type paravirtual`,
  );
  return out;
}
