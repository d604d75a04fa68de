import type { FormatDriver } from '@amitrans/block';
import { qcow2Driver } from '@amitrans/qcow2';
import { vdiDriver } from '@amitrans/vdi';
import { vhdDriver } from '@amitrans/vhd';
import { vmdkDriver } from '@amitrans/vmdk';

/**
 * The one table of container formats. Order matters only for probing: formats with a
 * signature at offset 0 come first; VHD (whose fixed form is known only by its footer)
 * after them, so a VMDK or qcow2 that happens to end in a VHD-like footer is not misnamed.
 */
export const drivers: readonly FormatDriver[] = [qcow2Driver, vdiDriver, vmdkDriver, vhdDriver];

export function driverByName(name: string): FormatDriver | undefined {
  return drivers.find((d) => d.name === name);
}
