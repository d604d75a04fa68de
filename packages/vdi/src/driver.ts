import type { BlockDevice, FormatDriver, OpenContext, Sink, WriteOptions } from '@amitrans/block';
import { inContextFile } from '@amitrans/block';
import { VDI_WRITE_OPTIONS, parseVdiOptions } from './options.js';
import { probeVdi } from './probe.js';
import { openVdi } from './reader.js';
import { type VdiWriteResult, writeVdi } from './writer.js';

function open(container: BlockDevice, context?: OpenContext): Promise<BlockDevice> {
  return inContextFile(context, () => openVdi(container));
}

export const vdiDriver = {
  name: 'vdi',
  qemuFormat: 'vdi',
  extensions: ['vdi'],
  platform: 'virtualbox',
  description: 'VirtualBox Disk Image (VDI 1.1): dynamic and fixed',
  probe: probeVdi,
  open,
  write: (disk: BlockDevice, sink: Sink, options?: WriteOptions): Promise<VdiWriteResult> => writeVdi(disk, sink, options),
  // The map precedes the data, so a stream takes it from the source's extents first.
  canStream: (_options?: Readonly<Record<string, string>>): boolean => true,
  writeOptions: VDI_WRITE_OPTIONS,
  checkOptions: (options: Readonly<Record<string, string>>): void => void parseVdiOptions(options),
} satisfies FormatDriver;
