import { lookupPvGrubAki, parsePvGrubName, type PvGrubDisk } from './akis.js';
import type { ImageRecord } from './record.js';

/**
 * pvgrub-hd0: the kernel is inside a partition-less filesystem (the best candidates);
 * pvgrub-hd00: inside partition 1; aki-kernel: the kernel is outside the image (it will not
 * boot elsewhere as it is); hvm: a full disk with its own boot loader; no-kernel-info: the
 * listing does not say (kernel and ramdisk images themselves, or PV images with no AKI).
 */
export type ImageClass = 'pvgrub-hd0' | 'pvgrub-hd00' | 'aki-kernel' | 'hvm' | 'no-kernel-info';

export const IMAGE_CLASSES: readonly ImageClass[] = ['pvgrub-hd0', 'pvgrub-hd00', 'aki-kernel', 'hvm', 'no-kernel-info'];

export interface PvGrubInfo {
  aki: string;
  version: string;
  disk: PvGrubDisk;
  arch: string;
  /** 'table' (built in, with its source) or 'kernels' (from the kernel's name). */
  from: 'table' | 'kernels';
  source: string;
}

export interface ClassifiedImage extends ImageRecord {
  class: ImageClass;
  pvgrub: PvGrubInfo | undefined;
}

/** AKIs learnt from a `--kernels` listing: id to what its name says. */
export type KernelIndex = Map<string, PvGrubInfo>;

/** Index the pv-grub kernels of a kernel listing by id, from their location or name. */
export function addKernel(index: KernelIndex, kernel: ImageRecord): boolean {
  const parsed = parsePvGrubName(kernel.location) ?? parsePvGrubName(kernel.name);
  if (!parsed) return false;
  index.set(kernel.id, {
    aki: kernel.id,
    version: parsed.version,
    disk: parsed.disk,
    arch: parsed.arch,
    from: 'kernels',
    source: `${kernel.source}:${kernel.line} ${kernel.location || kernel.name}`,
  });
  return true;
}

/** The pv-grub an AKI is, from the built-in table first, then from the kernel listing. */
export function pvGrubOf(aki: string, kernels?: KernelIndex): PvGrubInfo | undefined {
  const row = lookupPvGrubAki(aki);
  if (row) return { aki, version: row.version, disk: row.disk, arch: row.arch, from: 'table', source: row.source };
  return kernels?.get(aki);
}

/** Classify an image: the record itself gains its class (it is not copied). */
export function classify(record: ImageRecord, kernels?: KernelIndex): ClassifiedImage {
  // The record becomes the classified image: no copy per image of a 2-million-line listing.
  const out = record as ClassifiedImage;
  out.class = 'no-kernel-info';
  out.pvgrub = undefined;
  if (record.kernelId !== '') {
    out.pvgrub = pvGrubOf(record.kernelId, kernels);
    out.class = out.pvgrub ? (out.pvgrub.disk === 'hd0' ? 'pvgrub-hd0' : 'pvgrub-hd00') : 'aki-kernel';
  } else if (record.virtualizationType === 'hvm') {
    out.class = 'hvm';
  }
  return out;
}
