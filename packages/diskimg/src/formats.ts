import { extname } from 'node:path';
import { ImageError, type FormatDriver } from '@amitrans/block';
import { drivers } from './drivers.js';
import { rawDriver } from './raw.js';

/** Every format amitrans can write: raw (last in the probing table, since it claims anything) first. */
export function writableDrivers(): FormatDriver[] {
  return [rawDriver, ...drivers.filter((d) => d.write && d !== rawDriver)];
}

/** The writer -O names, by its name or one of its aliases. */
export function writerByName(name: string): FormatDriver {
  const d = writableDrivers().find((x) => x.name === name || x.aliases?.includes(name));
  if (!d) {
    throw new ImageError('E_UNSUPPORTED', `unknown output format '${name}' (known: ${writableDrivers().map((x) => x.name).join(', ')})`);
  }
  return d;
}

/** The output format a file name suggests, from the drivers' extensions; raw otherwise. */
export function formatFromName(path: string): string {
  const ext = extname(path).toLowerCase().replace(/^\./, '');
  return writableDrivers().find((d) => d.extensions?.includes(ext))?.name ?? 'raw';
}
