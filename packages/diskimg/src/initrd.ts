import type { ExtFs } from '@amitrans/extfs';
import { readInitrd, summariseInitrd, type InitrdSummary } from '@amitrans/guest';

/** Summarise an initrd inside a guest filesystem, reading it in bounded chunks through ExtFs. */
export async function readInitrdSummary(ext: ExtFs, path: string, size: number): Promise<InitrdSummary> {
  const contents = await readInitrd({ size, read: (position, length) => ext.read(path, position, length) });
  return summariseInitrd(contents);
}
