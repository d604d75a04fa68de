import type { ClassifiedImage } from './classify.js';

/** One line of a work list: what the fleet needs to fetch and translate one image. */
export interface WorkItem {
  id: string;
  /** The bundle manifest (instance-store) or undefined. */
  location: string | undefined;
  /** The root snapshot (EBS) or undefined. */
  snapshot: string | undefined;
  class: ClassifiedImage['class'];
  arch: string;
  rootDeviceType: string;
  pvgrub: { aki: string; version: string; disk: string };
  /** hd0 images hold a bare filesystem, hd00 ones a partitioned disk: both translate to every target. */
  targets: string[];
}

/**
 * Every target amitrans translates to, as guest's TARGETS names them (the fleet checks each
 * name against that list when it reads the work list; catalog does not depend on guest).
 * ec2-hvm included: a pv-grub AMI's way to stay on AWS after PV instances go.
 */
const TARGETS = ['kvm', 'virtualbox', 'xenserver', 'eucalyptus', 'ec2-hvm'];

/**
 * Only pv-grub images go on a work list: their kernel is inside the image. An aki-kernel
 * image needs its kernel brought in first; hvm images need no translation.
 */
export function workItem(image: ClassifiedImage): WorkItem | undefined {
  if (!image.pvgrub || image.imageType === 'kernel' || image.imageType === 'ramdisk') return undefined;
  const ebs = image.rootDeviceType === 'ebs';
  return {
    id: image.id,
    location: ebs ? undefined : image.location || undefined,
    snapshot: ebs ? image.snapshotId || undefined : undefined,
    class: image.class,
    arch: image.arch,
    rootDeviceType: image.rootDeviceType,
    pvgrub: { aki: image.pvgrub.aki, version: image.pvgrub.version, disk: image.pvgrub.disk },
    targets: [...TARGETS],
  };
}

export const CSV_COLUMNS = ['id', 'class', 'arch', 'root_device_type', 'owner', 'state', 'public', 'image_type', 'kernel_id', 'pvgrub_version', 'pvgrub_disk', 'location', 'name', 'snapshot_id', 'source', 'line'] as const;

export function csvRow(image: ClassifiedImage): string {
  const cells = [
    image.id, image.class, image.arch, image.rootDeviceType, image.owner, image.state,
    image.public === undefined ? '' : image.public ? 'public' : 'private', image.imageType, image.kernelId,
    image.pvgrub?.version ?? '', image.pvgrub?.disk ?? '', image.location, image.name, image.snapshotId, image.source, String(image.line),
  ];
  return cells.map(csvCell).join(',');
}

/** RFC 4180: quote a cell holding a comma, quote or line break; double its quotes. */
function csvCell(cell: string): string {
  return /[",\r\n]/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell;
}
