import { extname } from 'node:path';
import { ImageError, type FormatDriver } from '@amitrans/block';
import { drivers } from './drivers.js';
import { rawDriver } from './raw.js';

/** Every format amitrans can write, raw first. */
export function writableDrivers(): FormatDriver[] {
  return [rawDriver, ...drivers].filter((d) => d.write);
}

export function writerByName(name: string): FormatDriver {
  const alias: Record<string, string> = { vpc: 'vhd', img: 'raw' };
  const wanted = alias[name] ?? name;
  const d = writableDrivers().find((x) => x.name === wanted);
  if (!d) {
    throw new ImageError('E_UNSUPPORTED', `unknown output format '${name}' (known: ${writableDrivers().map((x) => x.name).join(', ')})`);
  }
  return d;
}

/** The output format a file name suggests, as qemu-img users name files; raw otherwise. */
export function formatFromName(path: string): string {
  const ext = extname(path).toLowerCase().replace(/^\./, '');
  const known: Record<string, string> = { qcow2: 'qcow2', qcow: 'qcow2', vhd: 'vhd', vpc: 'vhd', vdi: 'vdi', vmdk: 'vmdk', ova: 'ova' };
  return known[ext] ?? 'raw';
}
