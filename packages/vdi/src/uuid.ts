import { createHash, randomUUID } from 'node:crypto';

/**
 * VirtualBox stores UUIDs as RTUUID: the first three fields (u32, u16, u16) little-endian,
 * the last eight bytes as written. QEMU swaps them the same way; a reader that skips this
 * shows a different UUID than VBoxManage does.
 */
export function uuidToRtuuid(text: string): Uint8Array {
  const hex = text.replace(/[{}-]/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new TypeError(`${text} is not a UUID`);
  const b = Uint8Array.from(Buffer.from(hex, 'hex'));
  return Uint8Array.from([b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], ...b.subarray(8)] as number[]);
}

export function rtuuidToString(bytes: Uint8Array): string {
  const b = bytes;
  const canonical = Uint8Array.from([b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], ...b.subarray(8, 16)] as number[]);
  const hex = Buffer.from(canonical).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function isNullUuid(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0);
}

export function isUuid(text: string): boolean {
  return /^[0-9a-fA-F]{32}$/.test(text.replace(/[{}-]/g, ''));
}

export function newUuid(): string {
  return randomUUID();
}

/** A version-4-shaped UUID derived from a seed, so `-o uuid=` alone gives reproducible output. */
export function derivedUuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x40;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
