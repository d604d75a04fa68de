/**
 * describe-images listings made at test time (and by the bench): the notes' 12 us-east-1
 * pv-grub AKIs with their AMI counts (fleet.md §1.1), spread among images of other AKIs,
 * HVM images, kernel and ramdisk images, in the euca2ools text form or as describe-images
 * JSON pages. Seeded, so the same options give the same bytes.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { prng } from './index.js';

/** The notes' table: AKI, version, disk, arch, AMIs (us-east-1, 2012-10-30). */
export const NOTES_AKIS: readonly { aki: string; version: string; disk: 'hd0' | 'hd00'; arch: 'i386' | 'x86_64'; amis: number }[] = [
  { aki: 'aki-407d9529', version: '1.01', disk: 'hd0', arch: 'i386', amis: 1433 },
  { aki: 'aki-427d952b', version: '1.01', disk: 'hd0', arch: 'x86_64', amis: 1183 },
  { aki: 'aki-4c7d9525', version: '1.01', disk: 'hd00', arch: 'i386', amis: 38 },
  { aki: 'aki-4e7d9527', version: '1.01', disk: 'hd00', arch: 'x86_64', amis: 74 },
  { aki: 'aki-525ea73b', version: '1.02', disk: 'hd00', arch: 'i386', amis: 7 },
  { aki: 'aki-805ea7e9', version: '1.02', disk: 'hd0', arch: 'i386', amis: 1298 },
  { aki: 'aki-825ea7eb', version: '1.02', disk: 'hd0', arch: 'x86_64', amis: 1709 },
  { aki: 'aki-88aa75e1', version: '1.03', disk: 'hd0', arch: 'x86_64', amis: 233 },
  { aki: 'aki-8e5ea7e7', version: '1.02', disk: 'hd00', arch: 'x86_64', amis: 29 },
  { aki: 'aki-b2aa75db', version: '1.03', disk: 'hd00', arch: 'i386', amis: 9 },
  { aki: 'aki-b4aa75dd', version: '1.03', disk: 'hd00', arch: 'x86_64', amis: 11 },
  { aki: 'aki-b6aa75df', version: '1.03', disk: 'hd0', arch: 'i386', amis: 77 },
];

/** AKIs that are no pv-grub: their kernel is outside the image. No table row starts with aki-f00. */
export const OTHER_AKIS = ['aki-f0012345', 'aki-f00abcde', 'aki-f0099999', 'aki-f0055aa1'] as const;

export interface ListingOptions {
  /** IMAGE lines in all (default 20369, the notes' total). */
  images?: number;
  /** AMIs per pv-grub AKI (default: the notes' counts). */
  akiCounts?: Readonly<Record<string, number>>;
  form?: 'text' | 'text15' | 'json' | 'jsonl';
  seed?: number;
  /**
   * Images of other kernels whose name or TAG value mentions this AKI (the case where
   * `grep aki-… | perl` overcounts), every `mentionEvery`-th other image.
   */
  mention?: string;
  mentionEvery?: number;
  /** Images per JSON page (form json). */
  pageSize?: number;
}

export interface ListingFacts {
  images: number;
  lines: number;
  /** AMIs per pv-grub AKI, as written. */
  counts: Record<string, number>;
  pvgrub: number;
  hvm: number;
  akiKernel: number;
  kernelImages: number;
  /** Images of other kernels that mention `mention`. */
  mentions: number;
}

// Kinds after the pv-grub AKIs' indexes.
const OTHER = 250;
const HVM = 251;
const KERNEL = 252;
const RAMDISK = 253;

interface Image {
  id: string;
  location: string;
  owner: string;
  ebs: boolean;
  arch: string;
  type: 'machine' | 'kernel' | 'ramdisk';
  kernel: string;
  virt: 'paravirtual' | 'hvm';
  tags: [string, string][];
  name: string;
}

export async function writeListing(path: string, options: ListingOptions = {}): Promise<ListingFacts> {
  const r = prng(options.seed ?? 17);
  const counts = options.akiCounts ?? Object.fromEntries(NOTES_AKIS.map((a) => [a.aki, a.amis]));
  const akis = Object.keys(counts);
  const total = options.images ?? 20369;
  const kinds = layout(r, akis.map((a) => counts[a]!), total);
  const facts: ListingFacts = { images: total, lines: 0, counts: { ...counts }, pvgrub: 0, hvm: 0, akiKernel: 0, kernelImages: 0, mentions: 0 };
  const out = createWriteStream(path);
  let buffer: string[] = [];
  let size = 0;
  const flush = async (): Promise<void> => {
    if (buffer.length === 0) return;
    if (!out.write(buffer.join(''))) await once(out, 'drain');
    buffer = [];
    size = 0;
  };
  const emit = async (text: string): Promise<void> => {
    buffer.push(text);
    size += text.length;
    if (size > 1 << 16) await flush();
  };
  const form = options.form ?? 'text';
  const pageSize = options.pageSize ?? 1000;
  let otherSeen = 0;
  for (let i = 0; i < total; i++) {
    const kind = kinds[i]!;
    const image = makeImage(r, i, kind, akis);
    if (kind === OTHER && options.mention && ++otherSeen % (options.mentionEvery ?? 50) === 0) {
      facts.mentions++;
      if (otherSeen % 2 === 0) image.tags.push(['Description', `rebuilt from an image on ${options.mention}`]);
      else image.location = image.location.replace(/(\.manifest\.xml)?$/, `-${options.mention}$1`);
    }
    if (kind < OTHER) facts.pvgrub++;
    else if (kind === OTHER) facts.akiKernel++;
    else if (kind === HVM) facts.hvm++;
    else facts.kernelImages++;
    if (form === 'text' || form === 'text15') {
      const lines = textLines(image, form === 'text15');
      facts.lines += lines.length;
      await emit(lines.map((l) => `${l}\n`).join(''));
    } else if (form === 'jsonl') {
      facts.lines++;
      await emit(`${JSON.stringify(jsonImage(image))}\n`);
    } else {
      // Pages as `aws ec2 describe-images` prints them (4-space indent), one after the other.
      const text = JSON.stringify(jsonImage(image), null, 4).replace(/^/gm, '        ');
      const first = i % pageSize === 0;
      const last = i % pageSize === pageSize - 1 || i === total - 1;
      const chunk = `${first ? '{\n    "Images": [\n' : ''}${text}${last ? '\n    ]\n}\n' : ',\n'}`;
      facts.lines += chunk.split('\n').length - 1;
      await emit(chunk);
    }
  }
  await flush();
  out.end();
  await once(out, 'close');
  return facts;
}

/** A shuffled kind per image: each pv-grub AKI its count, the rest other kernels, HVM, kernels. */
function layout(r: ReturnType<typeof prng>, counts: number[], total: number): Uint8Array {
  const kinds = new Uint8Array(total);
  let at = 0;
  counts.forEach((n, k) => {
    kinds.fill(k, at, at + n);
    at += n;
  });
  if (at > total) throw new Error(`the AKI counts (${at}) exceed the images (${total})`);
  const rest = [OTHER, OTHER, OTHER, HVM, HVM, KERNEL, RAMDISK];
  for (let i = at; i < total; i++) kinds[i] = rest[i % rest.length]!;
  for (let i = total - 1; i > 0; i--) {
    const j = r.int(0, i);
    const t = kinds[i]!;
    kinds[i] = kinds[j]!;
    kinds[j] = t;
  }
  return kinds;
}

function hex8(n: number): string {
  // An odd multiplier makes the ids distinct for every n below 2^32.
  return (Math.imul(n + 1, 0x9e3779b1) >>> 0).toString(16).padStart(8, '0');
}

function makeImage(r: ReturnType<typeof prng>, i: number, kind: number, akis: string[]): Image {
  const ebs = r.next() < 0.3;
  const coin = r.next() < 0.5 ? 'i386' : 'x86_64';
  // A pv-grub boots kernels of its own architecture only (guest.md §5.1).
  const arch = kind < OTHER ? NOTES_AKIS.find((a) => a.aki === akis[kind])?.arch ?? coin : coin;
  const owner = String(100000000000 + r.int(0, 999999));
  const name = `image-${i}-${arch}`;
  const type = kind === KERNEL ? 'kernel' : kind === RAMDISK ? 'ramdisk' : 'machine';
  const prefix = type === 'kernel' ? 'aki' : type === 'ramdisk' ? 'ari' : 'ami';
  const kernel = kind < OTHER ? akis[kind]! : kind === OTHER ? OTHER_AKIS[i % OTHER_AKIS.length]! : '';
  const tags: [string, string][] = r.next() < 0.4 ? [['Name', `web server ${i}`]] : [];
  return {
    id: `${prefix}-${hex8(i)}`,
    location: ebs ? `${owner}/${name}` : `bucket-${i % 97}/${name}.manifest.xml`,
    owner,
    ebs,
    arch,
    type,
    kernel,
    virt: kind === HVM ? 'hvm' : 'paravirtual',
    tags,
    name,
  };
}

/** euca2ools 3 (14 fields) or with the product-codes column (15), then BDM and TAG lines. */
function textLines(m: Image, productCodes: boolean): string[] {
  const head = ['IMAGE', m.id, m.location, m.owner, 'available', 'public', ...(productCodes ? [''] : [])];
  const tail = [m.arch, m.type, m.kernel, '', '', m.ebs ? 'ebs' : 'instance-store', m.virt, 'xen'];
  const lines = [[...head, ...tail].join('\t')];
  if (m.type === 'machine') {
    lines.push(m.ebs ? ['BLOCKDEVICEMAPPING', 'EBS', '/dev/sda1', `snap-${m.id.slice(4)}`, '8', 'true', 'standard', ''].join('\t') : ['BLOCKDEVICEMAPPING', 'EPHEMERAL', '/dev/sda2', 'ephemeral0'].join('\t'));
  }
  for (const [k, v] of m.tags) lines.push(['TAG', 'image', m.id, k, v].join('\t'));
  return lines;
}

function jsonImage(m: Image): Record<string, unknown> {
  return {
    Architecture: m.arch,
    BlockDeviceMappings: m.type !== 'machine' ? [] : m.ebs
      ? [{ DeviceName: '/dev/sda1', Ebs: { DeleteOnTermination: true, SnapshotId: `snap-${m.id.slice(4)}`, VolumeSize: 8, VolumeType: 'standard', Encrypted: false } }]
      : [{ DeviceName: '/dev/sda2', VirtualName: 'ephemeral0' }],
    Hypervisor: 'xen',
    ImageId: m.id,
    ImageLocation: m.location,
    ImageType: m.type,
    ...(m.kernel ? { KernelId: m.kernel } : {}),
    Name: m.name,
    OwnerId: m.owner,
    Public: true,
    RootDeviceName: m.virt === 'hvm' ? '/dev/xvda' : '/dev/sda1',
    RootDeviceType: m.ebs ? 'ebs' : 'instance-store',
    State: 'available',
    ...(m.tags.length ? { Tags: m.tags.map(([Key, Value]) => ({ Key, Value })) } : {}),
    VirtualizationType: m.virt,
  };
}
