import { acceptsOptions, inContextFile, view, type BlockDevice, type FormatDriver, type OpenContext, type ProbeInput, type ProbeResult } from '@amitrans/block';
import { looksLikeDescriptor, parseDescriptor } from './descriptor.js';
import { FLAG_COMPRESSED, SPARSE_MAGIC } from './header.js';
import { openVmdk } from './open.js';
import { VMDK_WRITE_OPTIONS, writeSettings, writeVmdk } from './writer.js';

function probe(input: ProbeInput): ProbeResult | undefined {
  const head = input.head;
  if (head.length >= 512 && view(head).getUint32(0, true) === SPARSE_MAGIC) {
    const dv = view(head);
    const capacity = dv.getBigUint64(12, true);
    const descriptorOffset = Number(dv.getBigUint64(28, true));
    let subformat = (dv.getUint32(8, true) & FLAG_COMPRESSED) !== 0 ? 'streamOptimized' : 'monolithicSparse';
    // The embedded descriptor (usually at sector 1) names the createType.
    if (descriptorOffset > 0 && descriptorOffset * 512 + 512 <= head.length) {
      const m = /createType\s*=\s*"?(\w+)/.exec(Buffer.from(head.subarray(descriptorOffset * 512, Math.min(head.length, descriptorOffset * 512 + 4096))).toString('latin1'));
      if (m) subformat = m[1]!;
    }
    return {
      format: 'vmdk',
      subformat,
      ...(capacity * 512n <= BigInt(Number.MAX_SAFE_INTEGER) ? { virtualSize: Number(capacity) * 512 } : {}),
    };
  }
  if (input.size <= 1024 * 1024 && looksLikeDescriptor(head)) {
    try {
      const d = parseDescriptor(input.size <= head.length ? head.subarray(0, input.size) : head);
      const sectors = d.extents.reduce((n, e) => n + e.sectors, 0);
      return { format: 'vmdk', subformat: d.createType, ...(input.size <= head.length ? { virtualSize: sectors * 512 } : {}) };
    } catch {
      return { format: 'vmdk' };
    }
  }
  return undefined;
}

/** VMware VMDK: reads monolithicSparse, streamOptimized (both layouts) and descriptor files with flat extents; writes monolithicSparse and streamOptimized. */
export const vmdkDriver: FormatDriver = {
  name: 'vmdk',
  qemuFormat: 'vmdk',
  extensions: ['vmdk'],
  description: 'VMware virtual disk: monolithicSparse, streamOptimized, monolithicFlat (read)',
  probe,
  open: (container: BlockDevice, context?: OpenContext): Promise<BlockDevice> => inContextFile(context, () => openVmdk(container, context)),
  write: writeVmdk,
  // Every valid option set streams.
  canStream: (options?: Readonly<Record<string, string>>): boolean => acceptsOptions(writeSettings, options),
  writeOptions: VMDK_WRITE_OPTIONS,
};
