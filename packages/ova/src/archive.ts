import { ImageError, isZero, readAt, type BlockDevice } from '@amitrans/block';
import { OvaError } from './errors.js';
import {
  BLOCK,
  TYPE_FILE,
  TYPE_FILE_OLD,
  TYPE_GNU_LONGLINK,
  TYPE_GNU_LONGNAME,
  TYPE_PAX,
  TYPE_PAX_GLOBAL,
  isZeroBlock,
  padding,
  parsePaxRecords,
  parseTarHeader,
} from './tar.js';

/** One member of the archive, located but not read. */
export interface TarEntry {
  name: string;
  typeflag: string;
  /** Byte offset of the entry's header block (the first of its extended headers, if any). */
  headerOffset: number;
  /** Byte offset of its data. */
  dataOffset: number;
  size: number;
}

/** An OVA with thousands of members is not an appliance; stop walking long before. */
export const MAX_ENTRIES = 10_000;
/** pax and GNU long-name data are small; anything bigger is refused before it is read. */
const MAX_EXTENDED = 1024 * 1024;

/**
 * Refuse a member name that could reach outside the archive if anyone extracted it: an
 * absolute path, a '..' component, a backslash (a Windows separator), a drive letter, a
 * NUL or a URL. Nothing is ever extracted here, but such a name is never legitimate.
 */
export function checkMemberName(name: string, where: { structure: string; offset: number }): void {
  const parts = name.split('/');
  const bad =
    name === '' ||
    name.startsWith('/') ||
    name.includes('\\') ||
    name.includes('\0') ||
    /^[A-Za-z]:/.test(name) ||
    /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(name) ||
    parts.some((p) => p === '..');
  if (bad) throw new OvaError('unsafe-name', 'E_CORRUPT', `unsafe name ${JSON.stringify(name.slice(0, 200))}: absolute, with '..', a backslash or a URL`, where);
}

/** A member name without a leading "./" (tar -C dir . writes those). */
export function normalName(name: string): string {
  let n = name;
  while (n.startsWith('./')) n = n.slice(2);
  return n;
}

/**
 * Walk the tar headers of an archive held in `container`: USTAR, GNU (base-256 sizes,
 * long names) and pax (path and size records). Only regular files are returned.
 *
 * The walk is strict on purpose: every header must have a valid checksum and every entry
 * must end inside the archive. A disk image longer than its tar size field spills into
 * the place of the next header, and this is where that shows.
 */
export async function readTarEntries(container: BlockDevice): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  let pos = 0;
  let pendingName: string | undefined;
  let pendingSize: number | undefined;
  let extendedStart: number | undefined;
  let previous: TarEntry | undefined;
  let count = 0;
  while (pos + BLOCK <= container.size) {
    const block = await readAt(container, pos, BLOCK);
    if (isZeroBlock(block)) {
      // End of archive: two zero blocks, or one at the very end of a file. A lone zero
      // block followed by more data is the tail of a member that overran its entry.
      if (pos + 2 * BLOCK <= container.size && !isZeroBlock(await readAt(container, pos + BLOCK, BLOCK))) {
        throw overrun(previous, pos, 'a lone zero block is followed by more data');
      }
      // Only zeros may follow (tar pads to its record size). Data there is the rest of a
      // member that overran its entry, seen through zero blocks inside it.
      const junk = await firstNonZero(container, pos);
      if (junk !== undefined) throw overrun(previous, pos, `data at byte ${junk} after the end-of-archive blocks`);
      break;
    }
    if (++count > MAX_ENTRIES) throw new ImageError('E_TOO_LARGE', `more than ${MAX_ENTRIES} tar headers`, { structure: 'tar header', offset: pos });
    let h;
    try {
      h = parseTarHeader(block, pos);
    } catch (err) {
      if (err instanceof ImageError && previous) {
        throw overrun(previous, pos, err.detail);
      }
      throw err;
    }
    const dataOffset = pos + BLOCK;
    const size = h.typeflag === TYPE_PAX || h.typeflag === TYPE_GNU_LONGNAME || h.typeflag === TYPE_PAX_GLOBAL || h.typeflag === TYPE_GNU_LONGLINK
      ? h.size
      : pendingSize ?? h.size;
    if (dataOffset + size > container.size) {
      throw new OvaError('entry-overrun', 'E_TRUNCATED', `member ${JSON.stringify(pendingName ?? h.name)} of ${size} bytes ends past the end of the ${container.size}-byte archive`, { structure: 'tar header', offset: pos });
    }
    extendedStart ??= pos;
    if (h.typeflag === TYPE_PAX || h.typeflag === TYPE_PAX_GLOBAL || h.typeflag === TYPE_GNU_LONGNAME || h.typeflag === TYPE_GNU_LONGLINK) {
      if (size > MAX_EXTENDED) throw new ImageError('E_TOO_LARGE', `extended header of ${size} bytes`, { structure: 'tar header', offset: pos });
      const data = await readAt(container, dataOffset, size);
      if (h.typeflag === TYPE_PAX) {
        const records = parsePaxRecords(data, dataOffset);
        const path = records.get('path');
        if (path !== undefined) pendingName = path;
        const s = records.get('size');
        if (s !== undefined) {
          if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new ImageError('E_CORRUPT', `pax size "${s.slice(0, 30)}"`, { structure: 'pax extended header', offset: dataOffset });
          pendingSize = Number(s);
        }
      } else if (h.typeflag === TYPE_GNU_LONGNAME) {
        const nul = data.indexOf(0);
        pendingName = Buffer.from(nul < 0 ? data : data.subarray(0, nul)).toString('utf8');
      } else {
        // A global pax header or a GNU long link name: nothing an appliance needs.
        extendedStart = undefined;
      }
      pos = dataOffset + size + padding(size);
      continue;
    }
    const name = normalName(pendingName ?? h.name);
    if (name !== '' && name !== '.') checkMemberName(name, { structure: 'tar member name', offset: pos });
    const entry: TarEntry = { name, typeflag: h.typeflag, headerOffset: extendedStart, dataOffset, size };
    if (h.typeflag === TYPE_FILE || h.typeflag === TYPE_FILE_OLD) entries.push(entry);
    previous = entry;
    pendingName = undefined;
    pendingSize = undefined;
    extendedStart = undefined;
    pos = dataOffset + size + padding(size);
  }
  return entries;
}

/**
 * How far past the end-of-archive blocks zeros are checked: tar pads to its record size
 * (10 KiB), and a member that overran its entry shows within its own tail. Scanning an
 * archive followed by 20 GiB of zeros cost 20 s per GiB; beyond this the rest is ignored.
 */
export const TRAILER_SCAN_BYTES = 64 * 1024 * 1024;

/** Offset of the first non-zero byte within TRAILER_SCAN_BYTES from `from`, read in 1 MiB chunks. */
async function firstNonZero(container: BlockDevice, from: number): Promise<number | undefined> {
  const chunk = new Uint8Array(1024 * 1024);
  const end = Math.min(container.size, from + TRAILER_SCAN_BYTES);
  for (let at = from; at < end; at += chunk.length) {
    const part = chunk.subarray(0, Math.min(chunk.length, end - at));
    await container.read(part, at);
    if (isZero(part)) continue;
    return at + part.findIndex((b) => b !== 0);
  }
  return undefined;
}

function overrun(previous: TarEntry | undefined, pos: number, why: string): OvaError {
  const who = previous ? `member ${JSON.stringify(previous.name)} (${previous.size} bytes by its size field) runs past its entry` : 'the archive is damaged';
  return new OvaError('entry-overrun', 'E_CORRUPT', `no valid tar header where one must start (${why}): ${who}`, { structure: 'tar header', offset: pos });
}
