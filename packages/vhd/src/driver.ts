import type { BlockDevice, FormatDriver, OpenContext, Sink, WriteOptions } from '@amitrans/block';
import { inContextFile } from '@amitrans/block';
import { VHD_WRITE_OPTIONS, parseVhdOptions } from './options.js';
import { probeVhd } from './probe.js';
import { openVhd } from './reader.js';
import { type VhdWriteResult, writeVhd } from './writer.js';

function open(container: BlockDevice, context?: OpenContext): Promise<BlockDevice> {
  return inContextFile(context, () => openVhd(container));
}

export const vhdDriver = {
  name: 'vhd',
  aliases: ['vpc'],
  qemuFormat: 'vpc',
  extensions: ['vhd', 'vpc'],
  // A bzip2'd VHD is what CloudStack and XenServer take.
  compressible: true,
  description: 'Microsoft Virtual Hard Disk (VHD, "vpc" in qemu-img): fixed and dynamic',
  probe: probeVhd,
  open,
  write: (disk: BlockDevice, sink: Sink, options?: WriteOptions): Promise<VhdWriteResult> => writeVhd(disk, sink, options),
  // Fixed VHDs are one pass; dynamic ones take the BAT from the source's extents first.
  canStream: (_options?: Readonly<Record<string, string>>): boolean => true,
  writeOptions: VHD_WRITE_OPTIONS,
  checkOptions: (options: Readonly<Record<string, string>>): void => void parseVhdOptions(options),
} satisfies FormatDriver;
