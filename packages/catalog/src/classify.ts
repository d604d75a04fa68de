import { AkiTable, pvGrubFromName, type PvGrubAki } from './akis.js';
import type { ImageRecord } from './image.js';

/**
 * pvgrub-hd0: the kernel is inside a partition-less filesystem (the best candidates);
 * pvgrub-hd00: inside partition 1; aki-kernel: the kernel is an AKI outside the image (it
 * will not boot elsewhere as it is); hvm; no-kernel-info: a PV machine image whose listing
 * names no kernel; kernel and ramdisk: the AKI/ARI images themselves.
 */
export const IMAGE_CLASSES = ['pvgrub-hd0', 'pvgrub-hd00', 'aki-kernel', 'hvm', 'no-kernel-info', 'kernel', 'ramdisk'] as const;
export type ImageClass = (typeof IMAGE_CLASSES)[number];

export interface Classified {
  image: ImageRecord;
  class: ImageClass;
  /** The pv-grub AKI the image boots with (pvgrub-* classes). */
  pvgrub?: PvGrubAki;
}

export function classify(image: ImageRecord, akis: AkiTable): Classified {
  if (image.imageType === 'kernel' || image.imageType === 'ramdisk') return { image, class: image.imageType };
  if (image.virtualizationType === 'hvm') return { image, class: 'hvm' };
  if (!image.kernelId) return { image, class: 'no-kernel-info' };
  const pvgrub = akis.get(image.kernelId);
  if (!pvgrub) return { image, class: 'aki-kernel' };
  return { image, class: pvgrub.disk === 'hd0' ? 'pvgrub-hd0' : 'pvgrub-hd00', pvgrub };
}

/**
 * A kernel image of a `--kernels` listing, as a table row when its name or location says
 * pv-grub (`amazon/pv-grub-hd0_1.04-x86_64.gz`, `ec2-public-images/pv-grub-hd00-V1.01-…`).
 */
export function pvGrubRowFrom(kernel: ImageRecord): PvGrubAki | undefined {
  if (kernel.imageType && kernel.imageType !== 'kernel') return undefined;
  if (!/^[ae]ki-/.test(kernel.id)) return undefined;
  const facts = pvGrubFromName(kernel.location) ?? (kernel.name ? pvGrubFromName(kernel.name) : undefined);
  if (!facts) return undefined;
  return { id: kernel.id, ...facts, region: '', source: `${kernel.file}:${kernel.line}` };
}

/** What to try an image on: every target for the pv-grub classes, nothing for the rest. */
export function suggestedTargets(c: ImageClass): string[] {
  return c === 'pvgrub-hd0' || c === 'pvgrub-hd00' ? ['kvm', 'virtualbox', 'xenserver', 'eucalyptus'] : [];
}
