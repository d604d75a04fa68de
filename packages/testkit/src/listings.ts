import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { prng } from './index.js';

/**
 * The seed notes' us-east-1 count of AMIs per pv-grub AKI (10/30/2012): 6101 in all, of
 * 20369 images (lwade/euca-wiki Automated-Translation-from-AMI-to-EMI.md).
 */
export const NOTES_AKI_COUNTS: Readonly<Record<string, number>> = {
  'aki-407d9529': 1433,
  'aki-427d952b': 1183,
  'aki-4c7d9525': 38,
  'aki-4e7d9527': 74,
  'aki-525ea73b': 7,
  'aki-805ea7e9': 1298,
  'aki-825ea7eb': 1709,
  'aki-88aa75e1': 233,
  'aki-8e5ea7e7': 29,
  'aki-b2aa75db': 9,
  'aki-b4aa75dd': 11,
  'aki-b6aa75df': 77,
};
export const NOTES_TOTAL_IMAGES = 20369;

/** The notes' example line, as printed there (tabs turned into spaces). */
export const NOTES_EXAMPLE_LINE =
  'IMAGE   ami-002bf169    bitnami-cloud/wordpress/bitnami-wordpress-3.3.2-0-multisite-linux-ubuntu-12.04-x86_64-s3.manifest.xml   979382823631    available       public          x86_64  machine aki-825ea7eb';

export interface ListingOptions {
  /** Images per pv-grub AKI (default: the notes' counts). */
  counts?: Readonly<Record<string, number>>;
  /** Every IMAGE (default: the notes' total). */
  total?: number;
  form: 'text' | 'json';
  seed?: number;
  /** Let names, locations and tags of other images mention this AKI (grep then overcounts). */
  mention?: string;
}

export interface GeneratedImage {
  id: string;
  kernel: string;
  kind: 'pvgrub' | 'aki-kernel' | 'hvm' | 'kernel' | 'ramdisk' | 'no-kernel';
  arch: 'i386' | 'x86_64';
  rootDeviceType: 'instance-store' | 'ebs';
  location: string;
  owner: string;
  tags: Record<string, string>;
  snapshot?: string;
}

/** Kernels that are not pv-grub (the kernel is outside the image). */
const OTHER_AKIS = ['aki-6eaa4907', 'aki-a71cf9ce', 'aki-b51cf9dc', 'aki-5f15f636', 'aki-0b4aa462'];

/**
 * The images of a listing like the notes' us-east-1 dump: the pv-grub images in the given
 * counts, shuffled among images with other kernels, HVM images, kernels and ramdisks.
 */
export function* listingImages(o: ListingOptions): Generator<GeneratedImage> {
  const r = prng(o.seed ?? 2012);
  const counts = o.counts ?? NOTES_AKI_COUNTS;
  const total = o.total ?? NOTES_TOTAL_IMAGES;
  const pvgrub: string[] = Object.entries(counts).flatMap(([aki, n]) => Array<string>(n).fill(aki));
  if (pvgrub.length > total) throw new Error('more pv-grub images than images');
  // Which positions hold pv-grub images: a shuffle of the slots.
  const slots: (string | undefined)[] = [...pvgrub, ...Array<undefined>(total - pvgrub.length).fill(undefined)];
  for (let i = slots.length - 1; i > 0; i--) {
    const j = r.int(0, i);
    [slots[i], slots[j]] = [slots[j], slots[i]];
  }
  for (let n = 0; n < total; n++) {
    const hex = (n * 2654435761 >>> 0).toString(16).padStart(8, '0');
    const arch = r.next() < 0.5 ? 'i386' : 'x86_64';
    const ebs = r.next() < 0.3;
    const aki = slots[n];
    const roll = r.next();
    const kind: GeneratedImage['kind'] = aki ? 'pvgrub' : roll < 0.55 ? 'aki-kernel' : roll < 0.8 ? 'hvm' : roll < 0.9 ? 'kernel' : roll < 0.95 ? 'ramdisk' : 'no-kernel';
    const prefix = kind === 'kernel' ? 'aki' : kind === 'ramdisk' ? 'ari' : 'ami';
    const owner = String(100000000000 + r.int(0, 899999999999));
    const mentions = o.mention !== undefined && r.next() < 0.02;
    const name = `image-${n}${mentions ? `-built-on-${o.mention}` : ''}`;
    const image: GeneratedImage = {
      id: `${prefix}-${hex}`,
      kernel: kind === 'pvgrub' ? aki! : kind === 'aki-kernel' ? OTHER_AKIS[r.int(0, OTHER_AKIS.length - 1)]! : '',
      kind,
      arch,
      rootDeviceType: ebs && kind !== 'kernel' && kind !== 'ramdisk' ? 'ebs' : 'instance-store',
      location: ebs ? `${owner}/${name}` : `bucket-${n % 97}/${name}.manifest.xml`,
      owner,
      tags: r.next() < 0.3 ? { Name: mentions ? `uses ${o.mention}` : `server ${n}` } : {},
    };
    if (image.rootDeviceType === 'ebs') image.snapshot = `snap-${hex}`;
    yield image;
  }
}

/** euca2ools text: IMAGE lines (14 fields, some 15 with product codes), then BDM and TAG lines. */
export function textLines(image: GeneratedImage, r: { next(): number }): string[] {
  const type = image.kind === 'kernel' ? 'kernel' : image.kind === 'ramdisk' ? 'ramdisk' : 'machine';
  const virt = image.kind === 'hvm' ? 'hvm' : 'paravirtual';
  const visibility = r.next() < 0.7 ? 'public' : 'private';
  const head = ['IMAGE', image.id, image.location, image.owner, 'available', visibility];
  // The older tools' extra product-codes column (guest.md §5.4), sometimes filled.
  if (r.next() < 0.3) head.push(r.next() < 0.2 ? 'devpay-12345678' : '');
  const lines = [[...head, image.arch, type, image.kernel, '', '', image.rootDeviceType, virt, 'xen'].join('\t')];
  if (image.snapshot) lines.push(['BLOCKDEVICEMAPPING', 'EBS', '/dev/sda1', image.snapshot, '8', 'true', 'standard', ''].join('\t'));
  if (type === 'machine' && r.next() < 0.5) lines.push(['BLOCKDEVICEMAPPING', 'EPHEMERAL', '/dev/sdb', 'ephemeral0'].join('\t'));
  for (const [k, v] of Object.entries(image.tags)) lines.push(['TAG', 'image', image.id, k, v].join('\t'));
  return lines;
}

/** One describe-images `Images[]` element. */
export function jsonImage(image: GeneratedImage): Record<string, unknown> {
  const type = image.kind === 'kernel' ? 'kernel' : image.kind === 'ramdisk' ? 'ramdisk' : 'machine';
  const o: Record<string, unknown> = {
    Architecture: image.arch,
    ImageId: image.id,
    ImageLocation: image.location,
    ImageType: type,
    OwnerId: image.owner,
    Public: true,
    State: 'available',
    RootDeviceType: image.rootDeviceType,
    RootDeviceName: '/dev/sda1',
    VirtualizationType: image.kind === 'hvm' ? 'hvm' : 'paravirtual',
    Hypervisor: 'xen',
    BlockDeviceMappings: image.snapshot ? [{ DeviceName: '/dev/sda1', Ebs: { SnapshotId: image.snapshot, VolumeSize: 8, DeleteOnTermination: true } }] : [],
  };
  if (image.kernel) o.KernelId = image.kernel;
  if (Object.keys(image.tags).length) o.Tags = Object.entries(image.tags).map(([Key, Value]) => ({ Key, Value }));
  return o;
}

/** Write a listing to `path`, streaming (two million lines never sit in memory). Returns its images' count. */
export async function writeListing(path: string, o: ListingOptions): Promise<number> {
  const out = createWriteStream(path);
  const r = prng((o.seed ?? 2012) + 1);
  let n = 0;
  let text = '';
  const put = async (s: string): Promise<void> => {
    text += s;
    if (text.length < 1 << 16) return;
    if (!out.write(text)) await once(out, 'drain');
    text = '';
  };
  const PAGE = 1000;
  for (const image of listingImages(o)) {
    if (o.form === 'text') await put(`${textLines(image, r).join('\n')}\n`);
    else await put(`${n % PAGE === 0 ? `${n ? ']}\n' : ''}{"Images": [\n` : ',\n'}${JSON.stringify(jsonImage(image))}`);
    n++;
  }
  if (o.form === 'json') await put(n ? '], "NextToken": null}\n' : '{"Images": []}\n');
  out.end(text);
  await once(out, 'finish');
  return n;
}
