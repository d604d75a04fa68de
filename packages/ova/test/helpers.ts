import { readFile } from 'node:fs/promises';
import { FileDevice, FileSink, type BlockDevice } from '@amitrans/block';
import { serializeTarHeader } from '../src/index.js';
import { writeOva } from '../src/writer.js';

/** Options that make an OVA byte-for-byte reproducible. */
export const FIXED = { cid: '1234abcd', uuid: '0f1e2d3c-4b5a-4697-8877-665544332211', mtime: '1700000000' };

/** Write `raw` as an OVA at `out` through the package's writer. */
export async function makeOva(raw: string, out: string, options: Record<string, string> = {}): Promise<void> {
  const disk = await FileDevice.open(raw);
  const sink = await FileSink.create(out);
  try {
    await writeOva(disk, sink, { options: { ...FIXED, ...options } });
    await sink.commit();
  } catch (err) {
    await sink.abort();
    throw err;
  } finally {
    await disk.close();
  }
}

export interface Member {
  name: string;
  data: Uint8Array;
  /** Size written in the header (default: data length). */
  size?: number;
}

/** Assemble a tar from members by hand, so tests can build archives no tool would make. */
export function tarOf(members: readonly Member[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const m of members) {
    parts.push(serializeTarHeader({ name: m.name, size: m.size ?? m.data.length, mtime: 0 }));
    parts.push(m.data);
    parts.push(new Uint8Array((512 - (m.data.length % 512)) % 512));
  }
  parts.push(new Uint8Array(1024));
  return Buffer.concat(parts);
}

/** The members of a tar file as name -> bytes, read by this package's walker. */
export async function membersOf(path: string): Promise<Map<string, Uint8Array>> {
  const { readTarEntries } = await import('../src/archive.js');
  const dev = await FileDevice.open(path);
  try {
    const bytes = await readFile(path);
    const out = new Map<string, Uint8Array>();
    for (const e of await readTarEntries(dev)) out.set(e.name, bytes.subarray(e.dataOffset, e.dataOffset + e.size));
    return out;
  } finally {
    await dev.close();
  }
}

/** Read a whole device into memory (test images are a few MiB). */
export async function readAll(dev: BlockDevice): Promise<Uint8Array> {
  const buf = new Uint8Array(dev.size);
  await dev.read(buf, 0);
  return buf;
}
