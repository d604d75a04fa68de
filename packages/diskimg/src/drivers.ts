import type { FormatDriver } from '@amitrans/block';

export const drivers: readonly FormatDriver[] = [];

export function driverByName(name: string): FormatDriver | undefined {
  return drivers.find((d) => d.name === name);
}
