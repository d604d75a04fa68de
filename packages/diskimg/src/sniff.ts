/**
 * Signatures of the compressors around an image: not containers themselves, so not in the
 * driver table (tar archives, OVA or not, are: see drivers.ts).
 */

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
