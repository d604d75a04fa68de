import { IMAGE_CLASSES, type ClassifiedImage, type ImageClass } from './classify.js';
import { CatalogError } from './errors.js';

/** The filters of `amitrans catalog`; every one given must hold. Lists are any of. */
export interface ImageFilter {
  akis?: readonly string[];
  classes?: readonly ImageClass[];
  arches?: readonly string[];
  rootTypes?: readonly string[];
  /** An owner alias or account id. */
  owners?: readonly string[];
}

/** Whether the filter keeps everything (no list given): then nothing need be read per image. */
export function isEmptyFilter(filter: ImageFilter): boolean {
  return [filter.akis, filter.classes, filter.arches, filter.rootTypes, filter.owners].every((list) => !list || list.length === 0);
}

export function matches(image: ClassifiedImage, filter: ImageFilter): boolean {
  // Values are read only for the filters given: a text record decodes a field per read.
  const has = (list: readonly string[] | undefined, values: () => string[]): boolean => !list || list.length === 0 || values().some((v) => v !== '' && list.includes(v));
  return (
    has(filter.akis, () => [image.kernelId]) &&
    has(filter.classes, () => [image.class]) &&
    has(filter.arches, () => [image.arch]) &&
    has(filter.rootTypes, () => [image.rootDeviceType]) &&
    has(filter.owners, () => [image.owner, image.ownerId])
  );
}

/** `a,b` or repeated flags, as one list; class names are checked. */
export function parseList(values: readonly string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

export function parseClasses(values: readonly string[] | undefined): ImageClass[] {
  const list = parseList(values);
  for (const c of list) {
    if (!(IMAGE_CLASSES as readonly string[]).includes(c)) throw new CatalogError('E_BAD_FILTER', `unknown class "${c}" (one of ${IMAGE_CLASSES.join(', ')})`);
  }
  return list as ImageClass[];
}
