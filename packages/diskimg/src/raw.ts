import { isZero, type BlockDevice, type FormatDriver, type Sink, type WriteOptions, type WriteResult } from '@amitrans/block';

const CHUNK = 2 * 1024 * 1024;
const SPARSE = 4096;

/**
 * Write any disk as a raw image: data is copied, and zero or unallocated ranges (and 4 KiB
 * blocks that read as zeros) become holes in a seekable output or zeros on a stream.
 */
export async function writeRaw(disk: BlockDevice, sink: Sink, options: WriteOptions = {}): Promise<WriteResult> {
  let bytesRead = 0;
  let bytesWritten = 0;
  const buf = new Uint8Array(CHUNK);
  for await (const e of disk.extents()) {
    options.signal?.throwIfAborted();
    if (e.kind !== 'data') {
      await sink.skip(e.length);
    } else {
      for (let at = e.offset; at < e.offset + e.length; at += CHUNK) {
        const n = Math.min(CHUNK, e.offset + e.length - at);
        const chunk = buf.subarray(0, n);
        await disk.read(chunk, at);
        bytesRead += n;
        // Holes at 4 KiB granularity, but never split a write into tiny pieces on a stream.
        let p = 0;
        while (p < n) {
          let q = p;
          const zero = isZero(chunk.subarray(p, Math.min(n, p + SPARSE)));
          while (q < n && isZero(chunk.subarray(q, Math.min(n, q + SPARSE))) === zero) q = Math.min(n, q + SPARSE);
          if (zero && sink.seekable) await sink.skip(q - p);
          else {
            await sink.write(chunk.subarray(p, q));
            if (!zero) bytesWritten += q - p;
          }
          p = q;
        }
        options.progress?.(at + n, disk.size);
      }
    }
    options.progress?.(e.offset + e.length, disk.size);
  }
  return { bytesRead, bytesWritten };
}

export const rawDriver: FormatDriver = {
  name: 'raw',
  description: 'raw disk image (holes stay holes)',
  // Anything no other driver claims is raw; detection falls back to it explicitly.
  probe: () => undefined,
  open: async (container) => container,
  write: writeRaw,
  canStream: () => true,
  writeOptions: {},
};
