import type { FormatDriver } from '@amitrans/block';
import { ovaDriver, tarDriver } from '@amitrans/ova';
import { qcow2Driver } from '@amitrans/qcow2';
import { vdiDriver } from '@amitrans/vdi';
import { vhdDriver } from '@amitrans/vhd';
import { vmdkDriver } from '@amitrans/vmdk';
import { rawDriver } from './raw.js';

/**
 * The one table of container formats, in probing order (the first claim wins): archives
 * (an OVA, or any other tar) and formats with a signature at offset 0 first; VHD (whose
 * fixed form is known only by its footer) after them, so a VMDK or qcow2 that happens to
 * end in a VHD-like footer is not misnamed; raw last, since it claims anything.
 */
export const drivers: readonly FormatDriver[] = [ovaDriver, tarDriver, qcow2Driver, vdiDriver, vmdkDriver, vhdDriver, rawDriver];

export function driverByName(name: string): FormatDriver | undefined {
  return drivers.find((d) => d.name === name);
}
