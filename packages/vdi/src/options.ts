import { checkKnownOptions, onOff, optionError, type ImageError } from '@amitrans/block';
import { derivedUuid, isUuid, newUuid } from './uuid.js';

export const VDI_WRITE_OPTIONS: Readonly<Record<string, string>> = {
  subformat: 'dynamic (default) | static | fixed (static and fixed are the same: every block stored)',
  static: 'on: same as subformat=static (qemu-img spelling)',
  uuid: 'the image (creation) UUID; default random. Alone it also fixes the modification UUID, for reproducible output',
  modify_uuid: 'the modification UUID; default random, or derived from uuid= when that is given',
};

export interface VdiWriteSettings {
  readonly fixed: boolean;
  readonly uuidCreate: string;
  readonly uuidModify: string;
}

const bad = (detail: string): ImageError => optionError('VDI', detail);

export function parseVdiOptions(options: Readonly<Record<string, string>> = {}): VdiWriteSettings {
  checkKnownOptions('vdi', VDI_WRITE_OPTIONS, options);
  const sub = options.subformat ?? 'dynamic';
  if (!['dynamic', 'static', 'fixed'].includes(sub)) throw bad(`subformat=${sub}: expected dynamic, static or fixed`);
  const isStatic = onOff('vdi', 'static', options.static);
  if (options.static !== undefined && !isStatic && sub !== 'dynamic') throw bad(`static=off contradicts subformat=${sub}`);
  for (const key of ['uuid', 'modify_uuid'] as const) {
    const value = options[key];
    if (value !== undefined && !isUuid(value)) throw bad(`${key}=${value} is not a UUID`);
  }
  const uuidCreate = options.uuid ?? newUuid();
  const uuidModify = options.modify_uuid ?? (options.uuid === undefined ? newUuid() : derivedUuid(`vdi modify ${options.uuid}`));
  if (uuidModify.toLowerCase() === uuidCreate.toLowerCase()) throw bad('uuid and modify_uuid must differ');
  return { fixed: isStatic || sub !== 'dynamic', uuidCreate, uuidModify };
}
