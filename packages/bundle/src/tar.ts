import { ImageError } from '@amitrans/block';

/**
 * The one-member tar stream of a bundle, as euca2ools writes it: Python 2's `tarfile` in
 * stream mode with its default GNU format and a bare `TarInfo(prefix)` (mode 0644, uid and
 * gid 0, empty owner names, mtime 0, typeflag '0'), the data padded to 512 bytes, two zero
 * blocks, and zeros up to a multiple of the 10240-byte record.
 */
export const BLOCK = 512;
export const RECORD = 20 * BLOCK;
const GNU_MAGIC = 'ustar  \0';
/** Octal numbers in an 11-digit field stop short of 8 GiB; from there GNU writes base-256. */
const OCTAL_LIMIT = 8 ** 11;

/** The 512-byte header of the bundle's one member. */
export function tarHeader(name: string, size: number): Uint8Array {
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length === 0 || nameBytes.length > 100) {
    throw new ImageError('E_USAGE', `bundle prefix ${JSON.stringify(name)} must be 1 to 100 bytes (it names the tar member)`);
  }
  const h = new Uint8Array(BLOCK);
  h.set(nameBytes, 0);
  putOctal(h, 100, 8, 0o644);
  putOctal(h, 108, 8, 0);
  putOctal(h, 116, 8, 0);
  if (size < OCTAL_LIMIT) putOctal(h, 124, 12, size);
  else putBase256(h, 124, 12, size);
  putOctal(h, 136, 12, 0);
  h.fill(0x20, 148, 156);
  h[156] = 0x30; // '0': regular file
  h.set(Buffer.from(GNU_MAGIC, 'latin1'), 257);
  putOctal(h, 329, 8, 0);
  putOctal(h, 337, 8, 0);
  // tarfile's form: six octal digits, NUL, and the space already there.
  const sum = h.reduce((a, b) => a + b, 0);
  h.set(Buffer.from(`${sum.toString(8).padStart(6, '0')}\0`, 'latin1'), 148);
  return h;
}

/** Bytes that follow `size` bytes of member data: padding to 512, two zero blocks, padding to the record. */
export function tarTailLength(size: number): number {
  const data = roundUp(size, BLOCK);
  return roundUp(BLOCK + data + 2 * BLOCK, RECORD) - BLOCK - size;
}

/** The whole tar stream's length for a member of `size` bytes. */
export function tarStreamLength(size: number): number {
  return BLOCK + size + tarTailLength(size);
}

function roundUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}

function putOctal(h: Uint8Array, at: number, width: number, value: number): void {
  h.set(Buffer.from(`${value.toString(8).padStart(width - 1, '0')}\0`, 'latin1'), at);
}

function putBase256(h: Uint8Array, at: number, width: number, value: number): void {
  let v = BigInt(value);
  for (let i = width - 1; i > 0; i--) {
    h[at + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  h[at] = 0x80;
}

/** A numeric header field: octal digits (space/NUL terminated) or GNU base-256. */
export function readNumber(h: Uint8Array, at: number, width: number, structure: string, offset: number): number {
  const first = h[at]!;
  if (first & 0x80) {
    if (first !== 0x80) throw new ImageError('E_CORRUPT', 'negative or oversized base-256 number', { structure, offset: offset + at });
    let v = 0n;
    for (let i = 1; i < width; i++) v = (v << 8n) | BigInt(h[at + i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ImageError('E_TOO_LARGE', `number ${v} is beyond 2^53`, { structure, offset: offset + at });
    return Number(v);
  }
  const text = Buffer.from(h.subarray(at, at + width)).toString('latin1').replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new ImageError('E_CORRUPT', `number field ${JSON.stringify(text)} is not octal`, { structure, offset: offset + at });
  const v = parseInt(text, 8);
  if (!Number.isSafeInteger(v)) throw new ImageError('E_TOO_LARGE', `number ${text} (octal) is beyond 2^53`, { structure, offset: offset + at });
  return v;
}

/** The header checksum: the sum of the bytes with the checksum field read as spaces. */
export function headerChecksumOk(h: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  const text = Buffer.from(h.subarray(148, 156)).toString('latin1').replace(/[\0 ]+$/, '').trim();
  return /^[0-7]+$/.test(text) && parseInt(text, 8) === sum;
}
