import { inContextFile, view, type BlockDevice, type FormatDriver, type OpenContext, type ProbeInput, type ProbeResult } from '@amitrans/block';
import { QCOW2_MAGIC } from './header.js';
import { Qcow2Device } from './reader.js';
import { QCOW2_WRITE_OPTIONS, writeQcow2, writeSettings } from './writer.js';

function probe(input: ProbeInput): ProbeResult | undefined {
  if (input.head.length < 32) return undefined;
  const dv = view(input.head);
  if (dv.getUint32(0) !== QCOW2_MAGIC) return undefined;
  const version = dv.getUint32(4);
  if (version !== 2 && version !== 3) return { format: 'qcow2' };
  const size = dv.getBigUint64(24);
  return {
    format: 'qcow2',
    subformat: version === 2 ? 'compat 0.10' : 'compat 1.1',
    ...(size <= BigInt(Number.MAX_SAFE_INTEGER) ? { virtualSize: Number(size) } : {}),
  };
}

/** qcow2 v2/v3: reads standard, zero and compressed clusters; writes v3 (or v2) with optional compression. */
export const qcow2Driver: FormatDriver = {
  name: 'qcow2',
  qemuFormat: 'qcow2',
  extensions: ['qcow2', 'qcow'],
  description: 'QEMU copy-on-write image, version 2 (compat 0.10) and 3 (compat 1.1)',
  probe,
  open: (container: BlockDevice, context?: OpenContext): Promise<BlockDevice> => inContextFile(context, () => Qcow2Device.open(container)),
  write: writeQcow2,
  canStream(options?: Readonly<Record<string, string>>): boolean {
    try {
      return !writeSettings(options).compress;
    } catch {
      return false;
    }
  },
  writeOptions: QCOW2_WRITE_OPTIONS,
};
