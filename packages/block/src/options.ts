import { ImageError } from './errors.js';

/** The one set of words a yes/no format option takes, as qemu-img's -o does. */
const ON = ['on', 'true', 'yes', '1'];
const OFF = ['off', 'false', 'no', '0'];

/** A bad -o value of a format: E_UNSUPPORTED, placed in that format's write options. */
export function optionError(format: string, detail: string): ImageError {
  return new ImageError('E_UNSUPPORTED', detail, { structure: `${format} write options` });
}

/** A yes/no option: absent is `fallback`; anything but the on/off words is refused. */
export function onOff(format: string, key: string, value: string | undefined, fallback = false): boolean {
  if (value === undefined) return fallback;
  if (ON.includes(value.toLowerCase())) return true;
  if (OFF.includes(value.toLowerCase())) return false;
  throw optionError(format, `${format} ${key}=${value}: expected on or off`);
}

/**
 * Refuse a key the format's option table does not list: the one check, made by the
 * output resolver before any work and by the writer itself when called directly.
 */
export function checkKnownOptions(format: string, table: Readonly<Record<string, string>>, options: Readonly<Record<string, string>>): void {
  for (const key of Object.keys(options)) {
    if (!(key in table)) {
      const list = Object.keys(table);
      throw optionError(format, `${format} output has no option '${key}'${list.length ? ` (options: ${list.join(', ')})` : ' (it takes no options)'}`);
    }
  }
}
