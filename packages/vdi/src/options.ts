import { choiceOption, onOffOption, optionError, readOptions, textOption, type FormatOption, type ImageError, type OptionTable } from '@amitrans/block';
import { derivedUuid, isUuid, newUuid } from './uuid.js';

const uuidOption = (help: string): FormatOption<string> => textOption(help, isUuid, 'a UUID');

/** The -o keys of a VDI output: the driver's table, read by the resolver and by parseVdiOptions. */
export const VDI_WRITE_OPTIONS = {
  subformat: choiceOption('dynamic (default) | static | fixed (static and fixed are the same: every block stored)', ['dynamic', 'static', 'fixed'], 'dynamic'),
  static: onOffOption('on: same as subformat=static (qemu-img spelling)'),
  uuid: uuidOption('the image (creation) UUID; default random. Alone it also fixes the modification UUID, for reproducible output'),
  modify_uuid: uuidOption('the modification UUID; default random, or derived from uuid= when that is given'),
} satisfies OptionTable;

export interface VdiWriteSettings {
  readonly fixed: boolean;
  readonly uuidCreate: string;
  readonly uuidModify: string;
}

const bad = (detail: string): ImageError => optionError('VDI', detail);

export function parseVdiOptions(options: Readonly<Record<string, string>> = {}): VdiWriteSettings {
  const o = readOptions('vdi', VDI_WRITE_OPTIONS, options);
  if (o.static === false && o.subformat !== 'dynamic') throw bad(`static=off contradicts subformat=${o.subformat}`);
  const uuidCreate = o.uuid ?? newUuid();
  const uuidModify = o.modify_uuid ?? (o.uuid === undefined ? newUuid() : derivedUuid(`vdi modify ${o.uuid}`));
  if (uuidModify.toLowerCase() === uuidCreate.toLowerCase()) throw bad('uuid and modify_uuid must differ');
  return { fixed: o.static === true || o.subformat !== 'dynamic', uuidCreate, uuidModify };
}
