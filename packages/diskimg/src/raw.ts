import { copyToSink, type BlockDevice, type FormatDriver, type Sink, type WriteOptions, type WriteResult } from '@amitrans/block';

/**
 * Write any disk as a raw image: data is copied, and zero or unallocated ranges (and 4 KiB
 * blocks that read as zeros) become holes in a seekable output or zeros on a stream.
 */
export function writeRaw(disk: BlockDevice, sink: Sink, options: WriteOptions = {}): Promise<WriteResult> {
  return copyToSink(disk, sink, { progress: options.progress, signal: options.signal });
}

export const rawDriver: FormatDriver = {
  name: 'raw',
  qemuFormat: 'raw',
  aliases: ['img'],
  extensions: ['raw', 'img'],
  compressible: true,
  description: 'raw disk image (holes stay holes)',
  // Anything no other driver claims is raw: it is last in the table.
  probe: (input) => ({ format: 'raw', virtualSize: input.size }),
  open: async (container) => container,
  write: writeRaw,
  canStream: () => true,
  writeOptions: {},
};
