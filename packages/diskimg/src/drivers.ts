import type { FormatDriver } from '@amitrans/block';
import { ovaDriver } from '@amitrans/ova';
import { qcow2Driver } from '@amitrans/qcow2';
import { vdiDriver } from '@amitrans/vdi';
import { vhdDriver } from '@amitrans/vhd';
import { vmdkDriver } from '@amitrans/vmdk';

/**
 * The one table of container formats. Order matters only for probing: formats with a
 * signature at offset 0 come first; VHD (whose fixed form is known only by its footer)
 * after them, so a VMDK or qcow2 that happens to end in a VHD-like footer is not misnamed.
 * OVA (a tar whose first member is an .ovf) is last: it writes and opens through this
 * table, but detection recognises tar archives before any driver probes.
 */
export const drivers: readonly FormatDriver[] = [qcow2Driver, vdiDriver, vmdkDriver, vhdDriver, ovaDriver];

export function driverByName(name: string): FormatDriver | undefined {
  return drivers.find((d) => d.name === name);
}
