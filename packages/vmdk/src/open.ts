import { ConcatDevice, ImageError, SliceDevice, ZeroDevice, readAt, view, type BlockDevice, type OpenContext } from '@amitrans/block';
import { MAX_DESCRIPTOR_BYTES, looksLikeDescriptor, parseDescriptor, type Descriptor } from './descriptor.js';
import { COWD_MAGIC, SECTOR, SPARSE_MAGIC } from './header.js';
import { SparseExtentDevice } from './sparse.js';

/** createTypes whose extents are not hosted sparse or flat files. */
const UNSUPPORTED_TYPES = new Set(['vmfssparse', 'vmfsrdm', 'vmfsraw', 'sesparse', 'custom']);

/** The extents of a descriptor file laid end to end; closes the extent files it opened. */
class DescriptorDevice extends ConcatDevice {
  readonly descriptor: Descriptor;
  private readonly opened: BlockDevice[];

  constructor(descriptor: Descriptor, parts: BlockDevice[], opened: BlockDevice[]) {
    super(parts);
    this.descriptor = descriptor;
    this.opened = opened;
  }

  protected override async _close(): Promise<void> {
    for (const d of this.opened) await d.close();
  }
}

/**
 * Open a VMDK: a sparse extent with its descriptor embedded (monolithicSparse,
 * streamOptimized), or a text descriptor whose extents (FLAT, SPARSE, ZERO) are other
 * files reached through `context.openRelated`.
 */
export async function openVmdk(container: BlockDevice, context: OpenContext = {}): Promise<BlockDevice> {
  const head = await readAt(container, 0, Math.min(container.size, SECTOR));
  const magic = head.length >= 4 ? view(head).getUint32(0, true) : 0;
  if (magic === SPARSE_MAGIC || magic === COWD_MAGIC) return SparseExtentDevice.open(container);
  if (!looksLikeDescriptor(head)) throw new ImageError('E_BAD_MAGIC', 'neither a VMDK sparse extent nor a VMDK descriptor', { structure: 'VMDK header', offset: 0 });
  if (container.size > MAX_DESCRIPTOR_BYTES) {
    throw new ImageError('E_TOO_LARGE', `a ${container.size}-byte file is too large to be a VMDK descriptor`, { structure: 'VMDK descriptor', offset: 0 });
  }
  const descriptor = parseDescriptor(await readAt(container, 0, container.size));
  return openDescriptor(descriptor, context);
}

async function openDescriptor(d: Descriptor, context: OpenContext): Promise<BlockDevice> {
  const where = { structure: 'VMDK descriptor', offset: 0 };
  if (UNSUPPORTED_TYPES.has(d.createType.toLowerCase())) throw new ImageError('E_UNSUPPORTED', `VMDK createType "${d.createType}"`, where);
  if (d.parentCid !== 0xffffffff) throw new ImageError('E_UNSUPPORTED', 'this VMDK is a delta of a parent disk (parentCID is set)', where);
  if (d.extents.length === 0) throw new ImageError('E_CORRUPT', 'descriptor lists no extents', where);
  const parts: BlockDevice[] = [];
  const opened: BlockDevice[] = [];
  try {
    for (const e of d.extents) {
      const bytes = e.sectors * SECTOR;
      if (e.type === 'ZERO') {
        parts.push(new ZeroDevice(bytes));
        continue;
      }
      if (e.type !== 'FLAT' && e.type !== 'VMFS' && e.type !== 'SPARSE') {
        throw new ImageError('E_UNSUPPORTED', `VMDK extent type ${e.type}`, where);
      }
      if (!context.openRelated) {
        throw new ImageError('E_UNSUPPORTED', `this descriptor's data is in "${e.file}"; open the descriptor as a file so its extents can be found`, where);
      }
      const file = await context.openRelated(e.file);
      opened.push(file);
      if (e.type === 'SPARSE') {
        const sparse = await SparseExtentDevice.open(file);
        if (sparse.size < bytes) throw new ImageError('E_CORRUPT', `sparse extent "${e.file}" holds ${sparse.size} bytes, the descriptor says ${bytes}`, where);
        parts.push(new SliceDevice(sparse, 0, bytes, { name: `VMDK extent "${e.file}"` }));
        opened.push(sparse);
      } else {
        const start = e.offset * SECTOR;
        if (start + bytes > file.size) {
          throw new ImageError('E_TRUNCATED', `flat extent "${e.file}" is ${file.size} bytes, the descriptor needs ${start + bytes}`, where);
        }
        parts.push(new SliceDevice(file, start, bytes, { name: `VMDK extent "${e.file}"` }));
      }
    }
  } catch (err) {
    for (const o of opened.reverse()) await o.close().catch(() => undefined);
    throw err;
  }
  return new DescriptorDevice(d, parts, opened.reverse());
}
