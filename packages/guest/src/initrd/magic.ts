import type { InitrdCompression } from './contents.js';
import { cpioMagic } from './cpio.js';

export type Compressed = Exclude<InitrdCompression, 'none'>;

export const ZSTD_MAGIC = 0xfd2fb528;
export const LZ4_LEGACY_MAGIC = 0x184c2102;

export function isZstdSkippable(magic: number): boolean {
  return (magic & 0xfffffff0) >>> 0 === 0x184d2a50;
}

export type Sniffed = { kind: 'cpio' } | { kind: 'compressed'; compression: Compressed } | { kind: 'unsupported'; name: string } | { kind: 'unknown' };

/** What starts at `b`, by magic number: the same tests, in the same spirit, as the kernel's decompress_method(). */
export function sniffSegment(b: Uint8Array): Sniffed {
  if (cpioMagic(b) !== undefined) return { kind: 'cpio' };
  const at = (i: number): number => b[i] ?? -1;
  const le32 = b.length >= 4 ? (at(0) | (at(1) << 8) | (at(2) << 16) | (at(3) << 24)) >>> 0 : -1;
  if (at(0) === 0x1f && at(1) === 0x8b) return { kind: 'compressed', compression: 'gzip' };
  if (at(0) === 0xfd && at(1) === 0x37 && at(2) === 0x7a && at(3) === 0x58 && at(4) === 0x5a && at(5) === 0) {
    return { kind: 'compressed', compression: 'xz' };
  }
  if (at(0) === 0x42 && at(1) === 0x5a && at(2) === 0x68) return { kind: 'compressed', compression: 'bzip2' };
  if (le32 === 0xfd2fb528 || (le32 !== -1 && isZstdSkippable(le32))) return { kind: 'compressed', compression: 'zstd' };
  if (le32 === LZ4_LEGACY_MAGIC) return { kind: 'compressed', compression: 'lz4' };
  if (at(0) === 0x5d && at(1) === 0 && at(2) === 0) return { kind: 'compressed', compression: 'lzma' };
  if (le32 === 0x184d2204) return { kind: 'unsupported', name: 'lz4 frame format (only the legacy lz4 -l format is read)' };
  if (at(0) === 0x89 && at(1) === 0x4c && at(2) === 0x5a && at(3) === 0x4f) return { kind: 'unsupported', name: 'lzop' };
  if (at(0) === 0x1f && at(1) === 0x9e) return { kind: 'unsupported', name: 'old gzip' };
  return { kind: 'unknown' };
}

