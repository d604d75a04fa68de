import { ImageError } from '@amitrans/block';

/** Tar works in 512-byte blocks: a header block, the data padded to a block, and so on. */
export const BLOCK = 512;

/** The largest size the 11 octal digits of a USTAR size field can hold (8 GiB - 1). */
export const USTAR_MAX_SIZE = 0o77777777777;

/** Type flags this package writes or understands. */
export const TYPE_FILE = '0';
export const TYPE_FILE_OLD = '\0';
export const TYPE_DIRECTORY = '5';
export const TYPE_PAX = 'x';
export const TYPE_PAX_GLOBAL = 'g';
export const TYPE_GNU_LONGNAME = 'L';
export const TYPE_GNU_LONGLINK = 'K';

export interface TarHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  /** 'ustar' (POSIX, "ustar\0" "00"), 'gnu' ("ustar  \0") or 'v7' (no magic). */
  magic: 'ustar' | 'gnu' | 'v7';
  uname: string;
  gname: string;
}

const STRUCT = 'tar header';

function field(block: Uint8Array, at: number, length: number): string {
  const bytes = block.subarray(at, at + length);
  const nul = bytes.indexOf(0);
  return Buffer.from(nul < 0 ? bytes : bytes.subarray(0, nul)).toString('utf8');
}

/**
 * A numeric field: octal ASCII (leading spaces or zeros, ended by NUL or space), or GNU's
 * base-256 form (high bit of the first byte set) that holds sizes of 8 GiB and more.
 */
export function parseNumber(block: Uint8Array, at: number, length: number, name: string, offset: number): number {
  const bytes = block.subarray(at, at + length);
  const where = { structure: `${STRUCT} ${name} field`, offset: offset + at };
  if ((bytes[0]! & 0x80) !== 0) {
    if (bytes[0] === 0xff) throw new ImageError('E_CORRUPT', `negative base-256 ${name}`, where);
    let value = BigInt(bytes[0]! & 0x7f);
    for (let i = 1; i < bytes.length; i++) value = (value << 8n) | BigInt(bytes[i]!);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ImageError('E_TOO_LARGE', `${name} ${value} is beyond 2^53`, where);
    return Number(value);
  }
  const text = Buffer.from(bytes).toString('latin1').replace(/[\0 ]+$/, '').replace(/^[ ]+/, '');
  const end = text.indexOf('\0');
  const digits = end < 0 ? text : text.slice(0, end).trimEnd();
  if (digits === '') return 0;
  if (!/^[0-7]+$/.test(digits)) throw new ImageError('E_CORRUPT', `${name} ${JSON.stringify(digits)} is not an octal number`, where);
  const value = parseInt(digits, 8);
  if (!Number.isSafeInteger(value)) throw new ImageError('E_TOO_LARGE', `${name} ${digits} (octal) is beyond 2^53`, where);
  return value;
}

/** The header checksum: the byte sum with the checksum field counted as spaces (unsigned, and the signed variant old tars wrote). */
export function headerChecksums(block: Uint8Array): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b >= 0x80 ? b - 0x100 : b;
  }
  return { unsigned, signed };
}

export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** Parse one 512-byte header block found at `offset` of the archive. */
export function parseTarHeader(block: Uint8Array, offset = 0): TarHeader {
  if (block.length < BLOCK) throw new ImageError('E_TRUNCATED', `a header needs ${BLOCK} bytes, ${block.length} left`, { structure: STRUCT, offset });
  const digits = Buffer.from(block.subarray(148, 156)).toString('latin1').replace(/[\0 ]+$/, '').replace(/^ +/, '');
  const stored = /^[0-7]{1,7}$/.test(digits) ? parseInt(digits, 8) : -1;
  const sums = headerChecksums(block);
  if (stored !== sums.unsigned && stored !== sums.signed) {
    throw new ImageError('E_BAD_CHECKSUM', `header checksum ${JSON.stringify(digits.slice(0, 8))} does not match the header (${sums.unsigned})`, { structure: STRUCT, offset });
  }
  const magicText = Buffer.from(block.subarray(257, 265)).toString('latin1');
  const magic = magicText.startsWith('ustar\0') ? 'ustar' : magicText === 'ustar  \0' ? 'gnu' : 'v7';
  const name = field(block, 0, 100);
  const prefix = magic === 'ustar' ? field(block, 345, 155) : '';
  return {
    name: prefix ? `${prefix}/${name}` : name,
    mode: parseNumber(block, 100, 8, 'mode', offset),
    uid: parseNumber(block, 108, 8, 'uid', offset),
    gid: parseNumber(block, 116, 8, 'gid', offset),
    size: parseNumber(block, 124, 12, 'size', offset),
    mtime: parseNumber(block, 136, 12, 'mtime', offset),
    typeflag: String.fromCharCode(block[156]!),
    linkname: field(block, 157, 100),
    magic,
    uname: magic === 'v7' ? '' : field(block, 265, 32),
    gname: magic === 'v7' ? '' : field(block, 297, 32),
  };
}

/**
 * The one tar recogniser: the first member's name when `head` starts with a ustar or GNU
 * header whose checksum holds; undefined otherwise (a v7 header has no magic to tell it
 * from a disk's first sector).
 */
export function probeTar(head: Uint8Array): string | undefined {
  if (head.length < BLOCK) return undefined;
  try {
    const h = parseTarHeader(head.subarray(0, BLOCK));
    return h.magic === 'v7' ? undefined : h.name;
  } catch {
    return undefined;
  }
}

function putString(block: Uint8Array, at: number, length: number, value: string, name: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new ImageError('E_UNSUPPORTED', `tar ${name} "${value}" is longer than ${length} bytes`, { structure: STRUCT });
  block.set(bytes, at);
}

function putOctal(block: Uint8Array, at: number, length: number, value: number): void {
  // length - 1 digits and a NUL, as POSIX asks.
  block.set(Buffer.from(value.toString(8).padStart(length - 1, '0') + '\0', 'latin1'), at);
}

/** A size that does not fit the octal field is written in GNU's base-256 form. */
function putSize(block: Uint8Array, value: number): void {
  if (value <= USTAR_MAX_SIZE) {
    putOctal(block, 124, 12, value);
    return;
  }
  let v = BigInt(value);
  for (let i = 11; i >= 1; i--) {
    block[124 + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  block[124] = 0x80;
}

export interface TarEntrySpec {
  name: string;
  size: number;
  mtime: number;
  mode?: number;
  typeflag?: string;
  uname?: string;
  gname?: string;
}

/**
 * A POSIX USTAR header block (magic "ustar\0", version "00"). Names up to 100 bytes go
 * in the name field; longer ones are split at a '/' into prefix and name. Sizes of 8 GiB
 * and more use the base-256 size field GNU tar, libarchive, Python's tarfile and
 * VirtualBox's IPRT read.
 */
export function serializeTarHeader(spec: TarEntrySpec): Uint8Array {
  if (!Number.isSafeInteger(spec.size) || spec.size < 0) throw new ImageError('E_BAD_OFFSET', `tar entry size ${spec.size}`, { structure: STRUCT });
  const block = new Uint8Array(BLOCK);
  let name = spec.name;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', name.length - 1);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100 || Buffer.byteLength(name.slice(0, cut)) > 155) {
      throw new ImageError('E_UNSUPPORTED', `tar entry name "${name}" does not fit a USTAR header`, { structure: STRUCT });
    }
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
  }
  putString(block, 0, 100, name, 'name');
  putOctal(block, 100, 8, spec.mode ?? 0o644);
  putOctal(block, 108, 8, 0);
  putOctal(block, 116, 8, 0);
  putSize(block, spec.size);
  putOctal(block, 136, 12, Math.max(0, Math.floor(spec.mtime)));
  block[156] = (spec.typeflag ?? TYPE_FILE).charCodeAt(0);
  block.set(Buffer.from('ustar\x0000', 'latin1'), 257);
  putString(block, 265, 32, spec.uname ?? '', 'uname');
  putString(block, 297, 32, spec.gname ?? '', 'gname');
  putOctal(block, 329, 8, 0);
  putOctal(block, 337, 8, 0);
  putString(block, 345, 155, prefix, 'prefix');
  // Checksum: six octal digits, NUL, space (the traditional layout every reader accepts).
  const sum = headerChecksums(block).unsigned;
  block.set(Buffer.from(sum.toString(8).padStart(6, '0') + '\0 ', 'latin1'), 148);
  return block;
}

/** Bytes of padding after `size` bytes of data, up to the next block. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/**
 * Parse pax extended header records ("<length> <key>=<value>\n"); the length counts the
 * whole record including itself and the newline.
 */
export function parsePaxRecords(data: Uint8Array, offset = 0): Map<string, string> {
  const out = new Map<string, string>();
  let p = 0;
  while (p < data.length) {
    if (data[p] === 0) break;
    let q = p;
    while (q < data.length && data[q]! >= 0x30 && data[q]! <= 0x39) q++;
    const len = Number(Buffer.from(data.subarray(p, q)).toString('latin1'));
    if (q === p || data[q] !== 0x20 || !Number.isSafeInteger(len) || len <= q - p + 1 || p + len > data.length || data[p + len - 1] !== 0x0a) {
      throw new ImageError('E_CORRUPT', 'malformed pax extended header record', { structure: 'pax extended header', offset: offset + p });
    }
    const record = Buffer.from(data.subarray(q + 1, p + len - 1)).toString('utf8');
    const eq = record.indexOf('=');
    if (eq <= 0) throw new ImageError('E_CORRUPT', 'pax record without key=value', { structure: 'pax extended header', offset: offset + p });
    out.set(record.slice(0, eq), record.slice(eq + 1));
    p += len;
  }
  return out;
}
