import { createRequire } from 'node:module';
import { ImageError } from '@amitrans/block';

interface LzmaJs {
  compress(data: Uint8Array, mode: number): Uint8Array | number[];
  decompress(data: Uint8Array): Uint8Array | number[] | string;
}

/** LZMA-JS is CommonJS: loaded once, on first use. */
let lib: LzmaJs | undefined;
function lzmaJs(): LzmaJs {
  lib ??= createRequire(import.meta.url)('lzma') as LzmaJs;
  return lib;
}

/** .lzma ("lzma_alone") header: properties byte, u32 dictionary size, u64 uncompressed size. */
const ALONE_HEADER = 13;
/** lc=3, lp=0, pb=2: (pb * 5 + lp) * 9 + lc, the only properties GRUB's decoder knows (FIXED_PROPS). */
const GRUB_PROPERTIES = 0x5d;

/**
 * The raw LZMA1 stream GRUB's lzma_decompress.img decodes: lc3/lp0/pb2, a 64 KiB dictionary
 * (LZMA-JS mode 1), no header. LZMA-JS ends the stream with an end marker; it lies after
 * the last byte the decoder needs (it stops at the uncompressed size), so it is never read.
 */
export function lzmaRawCompress(data: Uint8Array): Uint8Array {
  const out = lzmaJs().compress(data, 1);
  const bytes = out instanceof Uint8Array ? out : Uint8Array.from(out);
  if (bytes[0] !== GRUB_PROPERTIES) throw new ImageError('E_UNSUPPORTED', `the LZMA encoder wrote properties 0x${bytes[0]?.toString(16)}, not lc3/lp0/pb2`);
  return bytes.slice(ALONE_HEADER);
}

/** Decode a raw LZMA1 lc3/lp0/pb2 stream to exactly `size` bytes, as GRUB's decoder does. */
export function lzmaRawDecompress(raw: Uint8Array, size: number): Uint8Array {
  const framed = new Uint8Array(ALONE_HEADER + raw.length);
  const dv = new DataView(framed.buffer);
  framed[0] = GRUB_PROPERTIES;
  dv.setUint32(1, 1 << 16, true);
  dv.setUint32(5, size, true);
  framed.set(raw, ALONE_HEADER);
  let out: Uint8Array | number[] | string;
  try {
    out = lzmaJs().decompress(framed);
  } catch (err) {
    throw new ImageError('E_CORRUPT', `the LZMA payload does not decode: ${(err as Error).message}`, { structure: 'core.img payload' });
  }
  const bytes = typeof out === 'string' ? new TextEncoder().encode(out) : out instanceof Uint8Array ? out : Uint8Array.from(out);
  if (bytes.length !== size) throw new ImageError('E_CORRUPT', `the LZMA payload decodes to ${bytes.length} bytes, not ${size}`, { structure: 'core.img payload' });
  return bytes;
}
