import { randomInt } from 'node:crypto';
import { basename } from 'node:path';
import {
  clusterRuns,
  clusterWindows,
  CoalescingSink,
  CountingSink,
  dataRanges,
  DeflatePool,
  ImageError,
  isZeroAt,
  OrderedQueue,
  WriteBehind,
  type BlockDevice,
  type ClusterRun,
  type ClusterWindow,
  type Sink,
  type WriteOptions,
  type WriteResult,
  zeroRuns,
} from '@amitrans/block';
import { serializeDescriptor } from './descriptor.js';
import {
  COMPRESSION_DEFLATE,
  COMPRESSION_NONE,
  FLAG_COMPRESSED,
  FLAG_MARKERS,
  FLAG_NEWLINE_TEST,
  FLAG_REDUNDANT_GD,
  GD_AT_END,
  SECTOR,
  serializeHeader,
  type SparseExtentHeader,
} from './header.js';
import { MARKER_FOOTER, MARKER_GD, MARKER_GT, serializeGrain, serializeMetadataMarker } from './marker.js';

const GRAIN_SECTORS = 128;
const GRAIN_BYTES = GRAIN_SECTORS * SECTOR;
const GTES = 512;
const GT_BYTES = GTES * 4;
const GT_SECTORS = GT_BYTES / SECTOR;
/** Sectors QEMU and VMware reserve for the embedded descriptor. */
const DESCRIPTOR_SECTORS = 20;
const ADAPTERS = ['ide', 'lsilogic', 'buslogic', 'legacyESX', 'pvscsi'];

export type Subformat = 'monolithicSparse' | 'streamOptimized';

export interface VmdkWriteSettings {
  subformat: Subformat;
  adapterType: string;
  cid: number;
  hwVersion: string;
  toolsVersion: string;
}

const KNOWN = ['subformat', 'adapter_type', 'cid', 'hwversion', 'toolsversion', 'compat6'];

/** Parse qemu-img style -o options. The CID is random unless `cid=` makes the output reproducible. */
export function writeSettings(options: Readonly<Record<string, string>> = {}): VmdkWriteSettings {
  const unknown = Object.keys(options).filter((k) => !KNOWN.includes(k));
  if (unknown.length > 0) throw new ImageError('E_UNSUPPORTED', `unknown vmdk option(s): ${unknown.join(', ')}`);
  const subformat = options.subformat ?? 'monolithicSparse';
  if (subformat !== 'monolithicSparse' && subformat !== 'streamOptimized') {
    throw new ImageError('E_UNSUPPORTED', `vmdk subformat=${subformat} (amitrans writes monolithicSparse and streamOptimized)`);
  }
  const adapterType = options.adapter_type ?? 'ide';
  if (!ADAPTERS.includes(adapterType)) throw new ImageError('E_UNSUPPORTED', `vmdk adapter_type=${adapterType} (one of ${ADAPTERS.join(', ')})`);
  let cid: number;
  if (options.cid !== undefined) {
    cid = parseInt(options.cid, 16);
    if (!/^[0-9a-fA-F]{1,8}$/.test(options.cid) || cid >= 0xfffffffe) throw new ImageError('E_UNSUPPORTED', `vmdk cid=${options.cid} (8 hex digits, not fffffffe/ffffffff)`);
  } else {
    cid = randomInt(0, 0xfffffffe);
  }
  const toolsVersion = options.toolsversion ?? '2147483647';
  if (!/^\d+$/.test(toolsVersion)) throw new ImageError('E_UNSUPPORTED', `vmdk toolsversion=${toolsVersion} (a number)`);
  const on = (v: string | undefined) => v === 'on' || v === 'true' || v === 'yes';
  const hwVersion = options.hwversion ?? (on(options.compat6) ? '6' : '4');
  if (!/^\d+$/.test(hwVersion)) throw new ImageError('E_UNSUPPORTED', `vmdk hwversion=${hwVersion} (a number)`);
  return { subformat, adapterType, cid, hwVersion, toolsVersion };
}


function descriptorBytes(settings: VmdkWriteSettings, capacity: number, file: string, sectors: number): Uint8Array {
  const text = serializeDescriptor({
    cid: settings.cid,
    createType: settings.subformat,
    extentSectors: capacity,
    extentType: 'SPARSE',
    extentFile: file,
    adapterType: settings.adapterType,
    hwVersion: settings.hwVersion,
    toolsVersion: settings.toolsVersion,
  });
  const bytes = new Uint8Array(sectors * SECTOR);
  const encoded = Buffer.from(text, 'utf8');
  if (encoded.length > bytes.length) throw new ImageError('E_TOO_LARGE', 'descriptor does not fit its sectors');
  bytes.set(encoded);
  return bytes;
}

function sinkName(sink: Sink): string {
  const path = (sink as { path?: unknown }).path;
  return typeof path === 'string' ? basename(path) : 'disk.vmdk';
}

/** Write `disk` as a VMDK (monolithicSparse or streamOptimized) into `sink`. */
export async function writeVmdk(disk: BlockDevice, sink: Sink, options: WriteOptions = {}): Promise<WriteResult> {
  const settings = writeSettings(options.options);
  if (sink.position !== 0) throw new ImageError('E_UNSUPPORTED', 'a VMDK must start at the beginning of its output');
  const capacity = Math.ceil(disk.size / SECTOR);
  const ranges = await dataRanges(disk, options.signal);
  const runs = clusterRuns(ranges, GRAIN_BYTES);
  let bytesRead = 0;
  const grains = clusterWindows(disk, ranges, GRAIN_BYTES, { signal: options.signal, onRead: (n) => (bytesRead += n) });
  const progress = (g: number): void => options.progress?.(Math.min(disk.size, (g + 1) * GRAIN_BYTES), disk.size);
  const name = sinkName(sink);
  if (settings.subformat === 'streamOptimized') {
    // Compressed grains and their markers are small appends: gather them into large writes.
    const coalescing = new CoalescingSink(sink);
    const out = new CountingSink(coalescing);
    await writeStreamOptimized(capacity, settings, name, out, grains, progress);
    await coalescing.flush();
    options.progress?.(disk.size, disk.size);
    return { bytesRead, bytesWritten: out.written };
  }
  const out = new CountingSink(sink);
  await writeMonolithicSparse(capacity, settings, name, out, runs, grains, progress);
  options.progress?.(disk.size, disk.size);
  return { bytesRead, bytesWritten: out.written };
}

/**
 * streamOptimized in the pure stream form (VirtualBox's and the spec's): header with
 * gdOffset = GD_AT_END, descriptor with slack, compressed grains in ascending LBA, each
 * non-empty grain table after its grains, the grain directory, a footer and an EOS marker.
 * Nothing is ever patched, so it streams.
 */
async function writeStreamOptimized(
  capacity: number,
  settings: VmdkWriteSettings,
  name: string,
  out: CountingSink,
  grains: AsyncIterable<ClusterWindow>,
  progress: (g: number) => void,
): Promise<void> {
  const descriptor = descriptorBytes(settings, capacity, name, DESCRIPTOR_SECTORS);
  const overHead = Math.ceil((1 + DESCRIPTOR_SECTORS) / GRAIN_SECTORS) * GRAIN_SECTORS;
  const header: SparseExtentHeader = {
    version: 3,
    flags: FLAG_NEWLINE_TEST | FLAG_COMPRESSED | FLAG_MARKERS,
    capacity,
    grainSize: GRAIN_SECTORS,
    descriptorOffset: 1,
    descriptorSize: DESCRIPTOR_SECTORS,
    numGTEsPerGT: GTES,
    rgdOffset: 0,
    gdOffset: GD_AT_END,
    overHead,
    uncleanShutdown: false,
    compressAlgorithm: COMPRESSION_DEFLATE,
  };
  await out.write(serializeHeader(header));
  await out.write(descriptor);
  await out.padTo(overHead * SECTOR);

  const gtCount = Math.ceil(Math.ceil(capacity / GRAIN_SECTORS) / GTES);
  const gd = new Uint32Array(gtCount);
  let gt: { index: number; entries: Uint32Array } | undefined;
  const flushGt = async (): Promise<void> => {
    if (!gt) return;
    // The GT marker comes right before the table; VirtualBox skips it by numSectors = 4.
    await out.write(serializeMetadataMarker(MARKER_GT, GT_SECTORS));
    gd[gt.index] = out.position / SECTOR;
    await out.write(new Uint8Array(gt.entries.buffer));
    gt = undefined;
  };
  const pool = new DeflatePool('zlib');
  const queue = new OrderedQueue<{ index: number; packed: Uint8Array }>(pool.threads * 4, async ({ index, packed }) => {
    const t = Math.floor(index / GTES);
    if (gt && gt.index !== t) await flushGt();
    gt ??= { index: t, entries: new Uint32Array(GTES) };
    gt.entries[index % GTES] = out.position / SECTOR;
    await out.write(serializeGrain(index * GRAIN_SECTORS, packed));
    progress(index);
  });
  try {
    for await (const w of grains) {
      for (let i = 0; i < w.count; i++) {
        if (isZeroAt(w.data, i * GRAIN_BYTES, (i + 1) * GRAIN_BYTES)) continue;
        // The window's buffer is reused: the deflate gets its own copy.
        const index = w.first + i;
        await queue.push(pool.compress(w.data.slice(i * GRAIN_BYTES, (i + 1) * GRAIN_BYTES)).then((packed) => ({ index, packed })));
      }
    }
    await queue.drain();
  } finally {
    await queue.settle();
    await pool.close();
  }
  await flushGt();
  const gdSectors = Math.ceil((gtCount * 4) / SECTOR);
  await out.write(serializeMetadataMarker(MARKER_GD, gdSectors));
  const gdOffset = out.position / SECTOR;
  const gdBytes = new Uint8Array(gdSectors * SECTOR);
  gdBytes.set(new Uint8Array(gd.buffer));
  await out.write(gdBytes);
  await out.write(serializeMetadataMarker(MARKER_FOOTER, 1));
  await out.write(serializeHeader({ ...header, gdOffset }));
  // End-of-stream: an all-zero marker sector.
  await out.write(new Uint8Array(SECTOR));
}

/**
 * monolithicSparse as QEMU lays it out: header, descriptor, redundant GD and all GTs, GD
 * and all GTs, then uncompressed grains. On a seekable sink all-zero grains are dropped and
 * the tables patched in at the end; on a stream every planned grain is stored.
 */
async function writeMonolithicSparse(
  capacity: number,
  settings: VmdkWriteSettings,
  name: string,
  out: CountingSink,
  runs: readonly ClusterRun[],
  grains: AsyncIterable<ClusterWindow>,
  progress: (g: number) => void,
): Promise<void> {
  const gtCount = Math.ceil(Math.ceil(capacity / GRAIN_SECTORS) / GTES);
  const gdSectors = Math.max(1, Math.ceil((gtCount * 4) / SECTOR));
  const rgdOffset = 1 + DESCRIPTOR_SECTORS;
  const rgtOffset = rgdOffset + gdSectors;
  const gdOffset = rgtOffset + gtCount * GT_SECTORS;
  const gtOffset = gdOffset + gdSectors;
  const overHead = Math.ceil((gtOffset + gtCount * GT_SECTORS) / GRAIN_SECTORS) * GRAIN_SECTORS;
  const header = serializeHeader({
    version: 1,
    flags: FLAG_NEWLINE_TEST | FLAG_REDUNDANT_GD,
    capacity,
    grainSize: GRAIN_SECTORS,
    descriptorOffset: 1,
    descriptorSize: DESCRIPTOR_SECTORS,
    numGTEsPerGT: GTES,
    rgdOffset,
    gdOffset,
    overHead,
    uncleanShutdown: false,
    compressAlgorithm: COMPRESSION_NONE,
  });
  const descriptor = descriptorBytes(settings, capacity, name, DESCRIPTOR_SECTORS);
  // Every GT exists (QEMU and VMware preallocate them); the GDs just list them in order.
  const directory = (first: number): Uint8Array => {
    const buf = new Uint8Array(gdSectors * SECTOR);
    const dv = new DataView(buf.buffer);
    for (let i = 0; i < gtCount; i++) dv.setUint32(i * 4, first + i * GT_SECTORS, true);
    return buf;
  };

  if (!out.sink.seekable) {
    // Planned layout: the k-th planned grain lives at overHead + k grains.
    const tables = new Uint8Array(gtCount * GT_BYTES);
    const dv = new DataView(tables.buffer);
    let k = 0;
    for (const r of runs) for (let g = r.first; g < r.first + r.count; g++) dv.setUint32(g * 4, overHead + k++ * GRAIN_SECTORS, true);
    await out.write(header);
    await out.write(descriptor);
    await out.write(directory(rgtOffset));
    await out.write(tables);
    await out.write(directory(gtOffset));
    await out.write(tables);
    await out.padTo(overHead * SECTOR);
    for await (const w of grains) {
      await out.write(w.data);
      progress(w.first + w.count - 1);
    }
    return;
  }

  await out.padTo(overHead * SECTOR);
  let gt: { index: number; entries: Uint32Array } | undefined;
  const flushGt = async (): Promise<void> => {
    if (!gt) return;
    const bytes = new Uint8Array(gt.entries.buffer);
    await out.pwrite(bytes, (rgtOffset + gt.index * GT_SECTORS) * SECTOR);
    await out.pwrite(bytes, (gtOffset + gt.index * GT_SECTORS) * SECTOR);
    gt = undefined;
  };
  // A window's grain writes run while the next window is read and checked.
  await WriteBehind.over(out, async (behind) => {
    for await (const w of grains) {
      // Runs of non-zero grains go out in one write each; all-zero grains are dropped.
      for (const r of zeroRuns(w.data, GRAIN_BYTES)) {
        if (r.zero) continue;
        const at = behind.position / SECTOR;
        for (let k = r.start / GRAIN_BYTES; k < r.end / GRAIN_BYTES; k++) {
          const index = w.first + k;
          const t = Math.floor(index / GTES);
          if (gt && gt.index !== t) await flushGt();
          gt ??= { index: t, entries: new Uint32Array(GTES) };
          gt.entries[index % GTES] = at + (k - r.start / GRAIN_BYTES) * GRAIN_SECTORS;
        }
        behind.write(w.data.subarray(r.start, r.end));
      }
      await behind.endWindow();
      progress(w.first + w.count - 1);
    }
  });
  await flushGt();
  await out.pwrite(directory(rgtOffset), rgdOffset * SECTOR);
  await out.pwrite(directory(gtOffset), gdOffset * SECTOR);
  await out.pwrite(descriptor, SECTOR);
  await out.pwrite(header, 0);
}
