import { ImageError } from '@amitrans/block';

/**
 * GPT GUIDs are stored mixed-endian: the first three fields little-endian, the last two
 * as bytes in order. The text form is the usual upper-case 8-4-4-4-12, as sfdisk prints it.
 */
export const GUID_SIZE = 16;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0').toUpperCase());

export function parseGuid(buf: Uint8Array, at: number): string {
  const b = (i: number): string => HEX[buf[at + i] ?? 0] ?? '00';
  return `${b(3)}${b(2)}${b(1)}${b(0)}-${b(5)}${b(4)}-${b(7)}${b(6)}-${b(8)}${b(9)}-` +
    `${b(10)}${b(11)}${b(12)}${b(13)}${b(14)}${b(15)}`;
}

const GUID_TEXT = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** Byte i of the stored form comes from hex pair ORDER[i] of the text (dashes removed). */
const ORDER = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];

export function serializeGuid(guid: string, buf: Uint8Array, at: number): void {
  if (!GUID_TEXT.test(guid)) {
    throw new ImageError('E_CORRUPT', `"${guid}" is not a GUID`, { structure: 'GUID', offset: at });
  }
  const hex = guid.replace(/-/g, '');
  for (let i = 0; i < GUID_SIZE; i++) {
    const pair = ORDER[i] ?? 0;
    buf[at + i] = parseInt(hex.slice(pair * 2, pair * 2 + 2), 16);
  }
}
