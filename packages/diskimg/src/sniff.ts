/**
 * Signatures of the wrappers around an image that are not disk containers themselves:
 * compressors and tar archives (an OVA is a tar whose first entry is an .ovf file).
 */
import { asciiz } from '@amitrans/block';

export type Compression = 'gzip' | 'bzip2' | 'xz' | 'zstd';

export function sniffCompression(head: Uint8Array): Compression | undefined {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  // "BZh" + block size '1'..'9' + the block magic (pi) or the end-of-stream magic (sqrt pi).
  if (head.length >= 10 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68 && head[3]! >= 0x31 && head[3]! <= 0x39) {
    const m = Buffer.from(head.subarray(4, 10)).toString('hex');
    if (m === '314159265359' || m === '177245385090') return 'bzip2';
  }
  if (head.length >= 6 && Buffer.from(head.subarray(0, 6)).toString('hex') === 'fd377a585a00') return 'xz';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return undefined;
}

export interface TarHead {
  /** Name of the first entry. */
  firstName: string;
}

/** A POSIX/GNU tar header at offset 0: "ustar" magic at 257 and a valid header checksum. */
export function sniffTar(head: Uint8Array): TarHead | undefined {
  if (head.length < 512) return undefined;
  const magic = asciiz(head, 257, 6);
  if (magic !== 'ustar' && magic !== 'ustar ') return undefined;
  const stored = parseInt(asciiz(head, 148, 8).trim(), 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : head[i]!;
  if (stored !== sum) return undefined;
  const prefix = magic === 'ustar' ? asciiz(head, 345, 155) : '';
  const name = asciiz(head, 0, 100);
  return { firstName: prefix ? `${prefix}/${name}` : name };
}
