import type { FormatDriver } from '@amitrans/block';
import { vdiDriver } from '@amitrans/vdi';
import { vhdDriver } from '@amitrans/vhd';

/**
 * The one table of container formats. Order matters only for probing: formats with a
 * signature at offset 0 come first; VHD (whose fixed form is known only by its footer)
 * after them, so an image that happens to end in a VHD-like footer is not misnamed.
 */
export const drivers: readonly FormatDriver[] = [vdiDriver, vhdDriver];

export function driverByName(name: string): FormatDriver | undefined {
  return drivers.find((d) => d.name === name);
}
