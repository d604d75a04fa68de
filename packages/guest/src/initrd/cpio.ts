import type { ByteStream } from './source.js';

/**
 * cpio archives as Linux initramfs uses them. The kernel itself only reads "newc"
 * (magic 070701) and "crc" (070702: the same header plus a checksum of the data); the old
 * portable ASCII "odc" (070707) and the old binary format (the 16-bit word 070707 in
 * either byte order) are read too, because old mkinitrd scripts could produce them.
 */
export type CpioFormat = 'newc' | 'crc' | 'odc' | 'binary-le' | 'binary-be';

export type EntryType = 'file' | 'directory' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket' | 'unknown';

export interface CpioHeader {
  format: CpioFormat;
  mode: number;
  nlink: number;
  fileSize: number;
  /** Length of the name including its terminating NUL. */
  nameSize: number;
}

export const TRAILER = 'TRAILER!!!';

/** Longest name the walker accepts: the kernel refuses names longer than PATH_MAX. */
export const MAX_NAME = 4096;

const HEADER_SIZE: Record<CpioFormat, number> = { newc: 110, crc: 110, odc: 76, 'binary-le': 26, 'binary-be': 26 };

/** The format whose magic starts `b`, if any (needs 6 bytes for the ASCII formats). */
export function cpioMagic(b: Uint8Array): CpioFormat | undefined {
  if (b.length >= 2 && b[0] === 0xc7 && b[1] === 0x71) return 'binary-le';
  if (b.length >= 2 && b[0] === 0x71 && b[1] === 0xc7) return 'binary-be';
  if (b.length < 6) return undefined;
  if (String.fromCharCode(b[0]!, b[1]!, b[2]!, b[3]!, b[4]!) !== '07070') return undefined;
  if (b[5] === 0x31) return 'newc';
  if (b[5] === 0x32) return 'crc';
  if (b[5] === 0x37) return 'odc';
  return undefined;
}

/** Parse an unsigned number written in ASCII digits of `radix`; undefined if any digit is bad. */
function asciiNumber(b: Uint8Array, at: number, len: number, radix: 8 | 16): number | undefined {
  let v = 0;
  for (let i = at; i < at + len; i++) {
    const c = b[i]!;
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (radix === 16 && c >= 0x41 && c <= 0x46) d = c - 0x37;
    else if (radix === 16 && c >= 0x61 && c <= 0x66) d = c - 0x57;
    else return undefined;
    if (d >= radix) return undefined;
    v = v * radix + d;
  }
  return v;
}

/** Parse a header of `format` from exactly headerSize(format) bytes; a string says what is wrong. */
export function parseCpioHeader(format: CpioFormat, b: Uint8Array): CpioHeader | string {
  if (format === 'newc' || format === 'crc') {
    // magic ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    const field = (i: number): number | undefined => asciiNumber(b, 6 + i * 8, 8, 16);
    const mode = field(1);
    const nlink = field(4);
    const fileSize = field(6);
    const nameSize = field(11);
    for (let i = 0; i < 13; i++) if (field(i) === undefined) return `field ${i + 1} is not hexadecimal`;
    return { format, mode: mode!, nlink: nlink!, fileSize: fileSize!, nameSize: nameSize! };
  }
  if (format === 'odc') {
    // magic(6) dev(6) ino(6) mode(6) uid(6) gid(6) nlink(6) rdev(6) mtime(11) namesize(6) filesize(11)
    const widths = [6, 6, 6, 6, 6, 6, 6, 11, 6, 11];
    const values: number[] = [];
    let at = 6;
    for (const w of widths) {
      const v = asciiNumber(b, at, w, 8);
      if (v === undefined) return `field at header byte ${at} is not octal`;
      values.push(v);
      at += w;
    }
    return { format, mode: values[2]!, nlink: values[5]!, fileSize: values[9]!, nameSize: values[8]! };
  }
  // Old binary: thirteen 16-bit words; mtime and filesize are two words, high word first.
  const le = format === 'binary-le';
  const word = (i: number): number => (le ? b[i * 2]! | (b[i * 2 + 1]! << 8) : (b[i * 2]! << 8) | b[i * 2 + 1]!);
  return { format, mode: word(3), nlink: word(6), nameSize: word(10), fileSize: word(11) * 0x10000 + word(12) };
}

export function entryType(mode: number): EntryType {
  switch (mode & 0o170000) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'directory';
    case 0o120000:
      return 'symlink';
    case 0o020000:
      return 'char';
    case 0o060000:
      return 'block';
    case 0o010000:
      return 'fifo';
    case 0o140000:
      return 'socket';
    default:
      return 'unknown';
  }
}

export interface CpioMember {
  header: CpioHeader;
  /** The name exactly as stored, without its NUL. */
  name: string;
  /** Offset of the header from the start of the stream. */
  offset: number;
}

export interface CpioVisitor {
  /**
   * Called for each member before its data: how many bytes of data it wants to keep
   * (0 to skip the data unread), or false to stop walking.
   */
  member(m: CpioMember): number | false;
  /** The kept data of the member just announced; `complete` is false if the stream ended inside it. */
  data(m: CpioMember, data: Uint8Array, complete: boolean): void;
  warn(message: string): void;
}

/** How a walk over one archive ended. */
export type CpioEnd = 'trailer' | 'end' | 'corrupt' | 'truncated' | 'stopped';

function pad(format: CpioFormat, n: number): number {
  if (format === 'newc' || format === 'crc') return (4 - (n % 4)) % 4;
  if (format === 'odc') return 0;
  return n % 2;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/**
 * Walk one cpio archive from the stream's current position up to and including its
 * trailer. Names and sizes come from the archive and are never trusted: a name longer
 * than MAX_NAME or a header that does not parse ends the walk with a warning, and file
 * data is skipped (never buffered) unless the visitor asks for a bounded part of it.
 */
export async function walkCpioArchive(stream: ByteStream, visitor: CpioVisitor, where: string): Promise<CpioEnd> {
  for (;;) {
    const offset = stream.position;
    const first = await stream.read(6);
    if (first.length === 0) {
      visitor.warn(`${where}: cpio archive ends at byte ${offset} without a ${TRAILER} entry`);
      return 'end';
    }
    const format = cpioMagic(first);
    if (format === undefined) {
      if (first.length < 6) {
        visitor.warn(`${where}: cpio header at byte ${offset} is truncated`);
        return 'truncated';
      }
      visitor.warn(`${where}: no cpio magic at byte ${offset} (found ${hex(first)})`);
      return 'corrupt';
    }
    const rest = await stream.read(HEADER_SIZE[format] - 6);
    if (rest.length < HEADER_SIZE[format] - 6) {
      visitor.warn(`${where}: cpio header at byte ${offset} is truncated`);
      return 'truncated';
    }
    const raw = new Uint8Array(HEADER_SIZE[format]);
    raw.set(first);
    raw.set(rest, 6);
    const header = parseCpioHeader(format, raw);
    if (typeof header === 'string') {
      visitor.warn(`${where}: corrupt cpio header at byte ${offset}: ${header}`);
      return 'corrupt';
    }
    if (header.nameSize < 1 || header.nameSize > MAX_NAME + 1) {
      visitor.warn(`${where}: cpio header at byte ${offset} gives a name of ${header.nameSize} bytes`);
      return 'corrupt';
    }
    const nameBytes = await stream.read(header.nameSize);
    if (nameBytes.length < header.nameSize) {
      visitor.warn(`${where}: cpio name at byte ${offset + HEADER_SIZE[format]} is truncated`);
      return 'truncated';
    }
    const nul = nameBytes.indexOf(0);
    const name = decoder.decode(nameBytes.subarray(0, nul === -1 ? nameBytes.length : nul));
    const namePad = pad(format, HEADER_SIZE[format] + header.nameSize);
    if ((await stream.skip(namePad)) < namePad) {
      visitor.warn(`${where}: cpio archive is truncated after the name ${JSON.stringify(name)}`);
      return 'truncated';
    }
    const dataPad = pad(format, header.fileSize);
    if (name === TRAILER) {
      await stream.skip(header.fileSize + dataPad);
      return 'trailer';
    }
    const member: CpioMember = { header, name, offset };
    const keep = visitor.member(member);
    if (keep === false) return 'stopped';
    let got = 0;
    if (keep > 0) {
      const want = Math.min(keep, header.fileSize);
      const data = await stream.read(want);
      got = data.length;
      visitor.data(member, data, got === header.fileSize);
    }
    got += await stream.skip(header.fileSize - got);
    if (got < header.fileSize) {
      visitor.warn(
        `${where}: data of ${JSON.stringify(name)} (${header.fileSize} bytes from byte ${offset}) is truncated after ${got} bytes`,
      );
      return 'truncated';
    }
    if ((await stream.skip(dataPad)) < dataPad) {
      visitor.warn(`${where}: cpio archive is truncated after the data of ${JSON.stringify(name)}`);
      return 'truncated';
    }
  }
}

function hex(b: Uint8Array): string {
  return Array.from(b.subarray(0, 6), (x) => x.toString(16).padStart(2, '0')).join(' ');
}
