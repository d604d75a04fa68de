import { randomInt } from 'node:crypto';
import { basename } from 'node:path';
import {
  appendUnits,
  choiceOption,
  clusterRuns,
  clusterWindows,
  CoalescingSink,
  CountingSink,
  dataRanges,
  deflateUnits,
  ImageError,
  onOffOption,
  readOptions,
  textOption,
  type BlockDevice,
  type ClusterWindow,
  type OptionTable,
  type Range,
  type Sink,
  type WriteOptions,
  type WriteResult,
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
import { checkVmdkCapacity } from './limits.js';
import { MARKER_FOOTER, MARKER_GD, MARKER_GT, serializeGrain, serializeMetadataMarker } from './marker.js';

const GRAIN_SECTORS = 128;
const GRAIN_BYTES = GRAIN_SECTORS * SECTOR;
const GTES = 512;
const GT_BYTES = GTES * 4;
const GT_SECTORS = GT_BYTES / SECTOR;
/** Sectors QEMU and VMware reserve for the embedded descriptor. */
const DESCRIPTOR_SECTORS = 20;
const ADAPTERS = ['ide', 'lsilogic', 'buslogic', 'legacyESX', 'pvscsi'] as const;

export type Subformat = 'monolithicSparse' | 'streamOptimized';

export interface VmdkWriteSettings {
  subformat: Subformat;
  adapterType: string;
  cid: number;
  hwVersion: string;
  toolsVersion: string;
}

/** A content ID: up to 8 hex digits, not the two values VMware reserves. */
function readCid(text: string): number | undefined {
  const cid = parseInt(text, 16);
  return /^[0-9a-fA-F]{1,8}$/.test(text) && cid < 0xfffffffe ? cid : undefined;
}

/** The -o keys of a VMDK output: the driver's table, read by the resolver and by writeSettings. */
export const VMDK_WRITE_OPTIONS = {
  subformat: choiceOption('monolithicSparse (default, as qemu-img) or streamOptimized (compressed; for VirtualBox, VMware, AWS)', ['monolithicSparse', 'streamOptimized'], 'monolithicSparse'),
  adapter_type: choiceOption('ide (default), lsilogic, buslogic, legacyESX or pvscsi; sets ddb.adapterType and the geometry', ADAPTERS, 'ide'),
  cid: { help: 'content ID as 8 hex digits (default: random); fix it for reproducible output', parse: readCid, expected: '8 hex digits, not fffffffe/ffffffff', default: () => randomInt(0, 0xfffffffe) },
  hwversion: textOption('ddb.virtualHWVersion (default 4)', /^\d+$/, 'a number'),
  toolsversion: textOption('ddb.toolsVersion (default 2147483647)', /^\d+$/, 'a number', '2147483647'),
  compat6: onOffOption('on: ddb.virtualHWVersion 6 (as qemu-img), unless hwversion= is given', false),
} satisfies OptionTable;

/** Parse qemu-img style -o options. The CID is random unless `cid=` makes the output reproducible. */
export function writeSettings(options: Readonly<Record<string, string>> = {}): VmdkWriteSettings {
  const o = readOptions('vmdk', VMDK_WRITE_OPTIONS, options);
  return { subformat: o.subformat, adapterType: o.adapter_type, cid: o.cid, hwVersion: o.hwversion ?? (o.compat6 ? '6' : '4'), toolsVersion: o.toolsversion };
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
  checkVmdkCapacity(capacity, GRAIN_SECTORS, GTES);
  const ranges = await dataRanges(disk, options.signal);
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
  const src = { disk, ranges, signal: options.signal, grains };
  // The stream form counts its reads through `grains`, the seekable one returns them.
  const appended = await writeMonolithicSparse(capacity, settings, name, out, src, progress);
  bytesRead += appended;
  options.progress?.(disk.size, disk.size);
  return { bytesRead, bytesWritten: out.written };
}

/**
 * Grain tables filled in ascending grain order, one at a time: a table is handed to `write`
 * (with its index) when a grain of the next one is set, and by `flush` at the end.
 */
class GrainTables {
  #gt: { index: number; entries: Uint32Array } | undefined;
  constructor(private readonly write: (index: number, table: Uint8Array) => Promise<void>) {}

  /** Make `grain`'s table the current one, writing the one before (which may move the output). */
  async open(grain: number): Promise<void> {
    const t = Math.floor(grain / GTES);
    if (this.#gt && this.#gt.index !== t) await this.flush();
    this.#gt ??= { index: t, entries: new Uint32Array(GTES) };
  }

  /** Record where `grain` (in the current table) is stored. */
  set(grain: number, sector: number): void {
    this.#gt!.entries[grain % GTES] = sector;
  }

  async flush(): Promise<void> {
    const gt = this.#gt;
    this.#gt = undefined;
    if (gt) await this.write(gt.index, new Uint8Array(gt.entries.buffer));
  }
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
  const tables = new GrainTables(async (index, table) => {
    // The GT marker comes right before the table; VirtualBox skips it by numSectors = 4.
    await out.write(serializeMetadataMarker(MARKER_GT, GT_SECTORS));
    gd[index] = out.position / SECTOR;
    await out.write(table);
  });
  await deflateUnits(grains, GRAIN_BYTES, 'zlib', async (index, _raw, packed) => {
    await tables.open(index);
    tables.set(index, out.position / SECTOR);
    await out.write(serializeGrain(index * GRAIN_SECTORS, packed));
    progress(index);
  });
  await tables.flush();
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

/** Where monolithicSparse keeps its tables, in sectors, as QEMU lays them out. */
interface SparseLayout {
  readonly gtCount: number;
  readonly rgdOffset: number;
  readonly rgtOffset: number;
  readonly gdOffset: number;
  readonly gtOffset: number;
  readonly overHead: number;
  readonly header: Uint8Array;
  readonly descriptor: Uint8Array;
  /** A grain directory listing every GT from sector `first`, in order. */
  directory(first: number): Uint8Array;
}

function sparseLayout(capacity: number, settings: VmdkWriteSettings, name: string): SparseLayout {
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
  // Every GT exists (QEMU and VMware preallocate them); the GDs just list them in order.
  const directory = (first: number): Uint8Array => {
    const buf = new Uint8Array(gdSectors * SECTOR);
    const dv = new DataView(buf.buffer);
    for (let i = 0; i < gtCount; i++) dv.setUint32(i * 4, first + i * GT_SECTORS, true);
    return buf;
  };
  return { gtCount, rgdOffset, rgtOffset, gdOffset, gtOffset, overHead, header, descriptor: descriptorBytes(settings, capacity, name, DESCRIPTOR_SECTORS), directory };
}

interface SparseSource {
  readonly disk: BlockDevice;
  readonly ranges: readonly Range[];
  readonly signal: AbortSignal | undefined;
  readonly grains: AsyncIterable<ClusterWindow>;
}

/**
 * monolithicSparse as QEMU lays it out: header, descriptor, redundant GD and all GTs, GD
 * and all GTs, then uncompressed grains. On a seekable sink all-zero grains are dropped and
 * the tables patched in at the end; on a stream every planned grain is stored. Resolves
 * to the bytes read on a seekable sink (a stream counts them through `grains`).
 */
async function writeMonolithicSparse(
  capacity: number,
  settings: VmdkWriteSettings,
  name: string,
  out: CountingSink,
  src: SparseSource,
  progress: (g: number) => void,
): Promise<number> {
  const l = sparseLayout(capacity, settings, name);
  if (!out.sink.seekable) {
    await writeSparseStream(l, out, src, progress);
    return 0;
  }
  await out.padTo(l.overHead * SECTOR);
  const tables = new GrainTables(async (index, table) => {
    await out.pwrite(table, (l.rgtOffset + index * GT_SECTORS) * SECTOR);
    await out.pwrite(table, (l.gtOffset + index * GT_SECTORS) * SECTOR);
  });
  const bytesRead = await appendUnits(src.disk, src.ranges, out, {
    unit: GRAIN_BYTES,
    signal: src.signal,
    progress: (done) => progress(done / GRAIN_BYTES - 1),
    place: async (first, count, at) => {
      for (let k = 0; k < count; k++) {
        await tables.open(first + k);
        tables.set(first + k, at / SECTOR + k * GRAIN_SECTORS);
      }
    },
  });
  await tables.flush();
  await out.pwrite(l.directory(l.rgtOffset), l.rgdOffset * SECTOR);
  await out.pwrite(l.directory(l.gtOffset), l.gdOffset * SECTOR);
  await out.pwrite(l.descriptor, SECTOR);
  await out.pwrite(l.header, 0);
  return bytesRead;
}

/** The planned layout on a stream: the k-th grain holding data lives at overHead + k grains. */
async function writeSparseStream(l: SparseLayout, out: CountingSink, src: SparseSource, progress: (g: number) => void): Promise<void> {
  const tables = new Uint8Array(l.gtCount * GT_BYTES);
  const dv = new DataView(tables.buffer);
  let k = 0;
  for (const r of clusterRuns(src.ranges, GRAIN_BYTES)) for (let g = r.first; g < r.first + r.count; g++) dv.setUint32(g * 4, l.overHead + k++ * GRAIN_SECTORS, true);
  await out.write(l.header);
  await out.write(l.descriptor);
  await out.write(l.directory(l.rgtOffset));
  await out.write(tables);
  await out.write(l.directory(l.gtOffset));
  await out.write(tables);
  await out.padTo(l.overHead * SECTOR);
  for await (const w of src.grains) {
    await out.write(w.data);
    progress(w.first + w.count - 1);
  }
}
