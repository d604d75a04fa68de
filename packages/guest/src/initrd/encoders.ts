import { gzipSync } from 'node:zlib';
import type { InitrdCompression } from './contents.js';

/** Compressions an appended segment can be written in. */
export const SEGMENT_WRITERS = ['gzip', 'zstd'] as const;
export type SegmentCompression = (typeof SEGMENT_WRITERS)[number];

/** The kernel option that lets it unpack each (CONFIG_RD_*). */
export const KERNEL_OPTION: Record<InitrdCompression, string | undefined> = {
  none: undefined,
  gzip: 'RD_GZIP',
  xz: 'RD_XZ',
  lzma: 'RD_LZMA',
  bzip2: 'RD_BZIP2',
  zstd: 'RD_ZSTD',
  lz4: 'RD_LZ4',
};

const ZSTD_MAGIC = 0xfd2fb528;
/** Largest zstd block (Block_Maximum_Size). */
const ZSTD_BLOCK = 128 * 1024;

/**
 * A zstd frame of Raw (stored) blocks (RFC 8878 §3.1.1): no compression, but every zstd
 * decoder reads it, the kernel's included, and it concatenates with the original zstd
 * segment so tools that decompress the whole rest of the file at once (unmkinitramfs)
 * still list it. Single_Segment with a 4-byte Frame_Content_Size; no checksum.
 */
export function zstdStored(data: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(data.length / ZSTD_BLOCK));
  const out = Buffer.alloc(4 + 1 + 4 + blocks * 3 + data.length);
  out.writeUInt32LE(ZSTD_MAGIC, 0);
  out[4] = (2 << 6) | (1 << 5); // FCS field 4 bytes, Single_Segment
  out.writeUInt32LE(data.length, 5);
  let at = 9;
  for (let i = 0; i < blocks; i++) {
    const chunk = data.subarray(i * ZSTD_BLOCK, (i + 1) * ZSTD_BLOCK);
    const last = i === blocks - 1 ? 1 : 0;
    const header = last | (0 << 1) | (chunk.length << 3); // Block_Type 0: Raw
    out[at] = header & 0xff;
    out[at + 1] = (header >> 8) & 0xff;
    out[at + 2] = (header >> 16) & 0xff;
    out.set(chunk, at + 3);
    at += 3 + chunk.length;
  }
  return out;
}

export function compressSegment(data: Uint8Array, how: SegmentCompression): Uint8Array {
  return how === 'gzip' ? gzipSync(data, { level: 9 }) : zstdStored(data);
}

/**
 * The compression for an appended segment: the original's last one when a writer exists
 * and the kernel unpacks it, else gzip. `config` is the kernel's parsed .config (undefined:
 * not known, so assumed to have what the original uses and gzip). Undefined: nothing fits.
 */
export function chooseSegmentCompression(last: InitrdCompression, config: ReadonlyMap<string, string> | undefined): SegmentCompression | undefined {
  const ok = (c: InitrdCompression): boolean => config === undefined || config.get(KERNEL_OPTION[c] ?? '') === 'y';
  if ((SEGMENT_WRITERS as readonly string[]).includes(last) && ok(last)) return last as SegmentCompression;
  return ok('gzip') ? 'gzip' : ok('zstd') ? 'zstd' : undefined;
}
