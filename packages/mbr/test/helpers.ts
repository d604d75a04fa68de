import { open } from 'node:fs/promises';
import { BaseDevice, type Extent, type Range } from '@amitrans/block';
import type { SfdiskTable } from '@amitrans/testkit';
import { crc32 } from '../src/crc32.js';
import { serializeGptEntry } from '../src/gpt-entry.js';
import { GPT_REVISION_1_0, serializeGptHeader } from '../src/gpt-header.js';
import { CHS_SENTINEL, serializeMbr, type PartitionTable } from '../src/index.js';

export const MiB = 1024 * 1024;

// sfdisk oracles: sfdiskImage and sfdiskJson from @amitrans/testkit.

type SfdiskPartition = SfdiskTable['partitions'][number];

/** The part of sfdisk's view compared with ours (no partitions key for an empty table). */
export interface Comparable {
  label: string;
  id: string;
  firstlba?: number;
  lastlba?: number;
  partitions?: SfdiskPartition[];
}

/** What sfdisk reports that we compare: label, id, usable LBAs, and per partition node/start/size/type/flags/names. */
export function oracleFields(t: SfdiskTable): Comparable {
  const out: Comparable = { label: t.label, id: t.id };
  if (t.firstlba !== undefined) out.firstlba = t.firstlba;
  if (t.lastlba !== undefined) out.lastlba = t.lastlba;
  if (t.partitions.length > 0) out.partitions = t.partitions.map(({ attrs: _attrs, ...p }) => p);
  return out;
}

/** Our table in sfdisk's shape, so one toEqual compares every field. */
export function asSfdisk(table: PartitionTable, device: string): Comparable {
  if (table.scheme === 'none') return { label: 'none', id: '' };
  const partitions: SfdiskPartition[] = table.partitions.map((p) => {
    const out: SfdiskPartition = { node: `${device}${p.index}`, start: p.startSector, size: p.sectors, type: '' };
    if (typeof p.type === 'number') {
      out.type = p.type.toString(16);
      if (p.bootable) out.bootable = true;
    } else if ('guid' in p) {
      out.type = p.type;
      out.uuid = p.guid;
      if (p.name !== '') out.name = p.name;
    }
    return out;
  });
  const out: Comparable = table.scheme === 'mbr'
    ? { label: 'dos', id: `0x${table.diskSignature.toString(16).padStart(8, '0')}` }
    : { label: 'gpt', id: table.diskGuid, firstlba: table.firstUsableLba, lastlba: table.lastUsableLba };
  if (partitions.length > 0) out.partitions = partitions;
  return out;
}

/**
 * A disk held as a map of non-zero sectors: any size, little memory. Fixtures are loaded
 * into it once and mutated in place by the fuzzer.
 */
export class SectorMapDevice extends BaseDevice {
  readonly sectors: Map<number, Uint8Array>;
  /** What the parser asked for: the fuzzer bounds both. */
  largestRead = 0;
  reads = 0;

  constructor(size: number, sectors = new Map<number, Uint8Array>()) {
    super(size, true, 'sector map');
    this.sectors = sectors;
  }

  static async fromFile(path: string): Promise<SectorMapDevice> {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const sectors = new Map<number, Uint8Array>();
      const chunk = new Uint8Array(MiB);
      for (let at = 0; at < size; at += MiB) {
        const n = Math.min(MiB, size - at);
        await fh.read(chunk, 0, n, at);
        for (let s = 0; s < n; s += 512) {
          const sector = chunk.subarray(s, s + 512);
          if (sector.some((b) => b !== 0)) sectors.set((at + s) / 512, sector.slice());
        }
      }
      return new SectorMapDevice(size, sectors);
    } finally {
      await fh.close();
    }
  }

  clone(size = this.size): SectorMapDevice {
    const copy = new Map<number, Uint8Array>();
    for (const [k, v] of this.sectors) if ((k + 1) * 512 <= size) copy.set(k, v.slice());
    return new SectorMapDevice(size, copy);
  }

  sector(lba: number): Uint8Array {
    let s = this.sectors.get(lba);
    if (!s) {
      s = new Uint8Array(512);
      this.sectors.set(lba, s);
    }
    return s;
  }

  protected override async _read(buffer: Uint8Array, position: number): Promise<void> {
    this.reads++;
    this.largestRead = Math.max(this.largestRead, buffer.length);
    let done = 0;
    while (done < buffer.length) {
      const at = position + done;
      const inSector = at % 512;
      const n = Math.min(512 - inSector, buffer.length - done);
      const s = this.sectors.get((at - inSector) / 512);
      if (s) buffer.set(s.subarray(inSector, inSector + n), done);
      else buffer.fill(0, done, done + n);
      done += n;
    }
  }

  protected override async _write(buffer: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < buffer.length) {
      const at = position + done;
      const inSector = at % 512;
      const n = Math.min(512 - inSector, buffer.length - done);
      this.sector((at - inSector) / 512).set(buffer.subarray(done, done + n), inSector);
      done += n;
    }
  }

  protected override async *_extents(range: Range): AsyncIterable<Extent> {
    yield { offset: range.offset, length: range.length, kind: 'data' };
  }
}

export interface GptEntrySpec {
  type?: string;
  guid?: string;
  first: number;
  last: number;
  name?: string;
  attributes?: bigint;
}

export interface GptSpec {
  entries: (GptEntrySpec | undefined)[];
  count?: number;
  entrySize?: number;
  firstUsable?: number;
  lastUsable?: number;
  /** Write a protective MBR (default true). */
  protectiveMbr?: boolean;
}

export const LINUX_GUID = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';

/** Lay out a GPT the way the spec does: pMBR, header at LBA 1, array at 2, backup array and header at the end. */
export function writeGpt(dev: SectorMapDevice, spec: GptSpec): void {
  const lastLba = Math.floor(dev.size / 512) - 1;
  const count = spec.count ?? 128;
  const entrySize = spec.entrySize ?? 128;
  const arraySectors = Math.ceil((count * entrySize) / 512);
  const array = new Uint8Array(arraySectors * 512);
  spec.entries.forEach((e, i) => {
    if (!e) return;
    serializeGptEntry({
      partitionTypeGuid: e.type ?? LINUX_GUID,
      uniquePartitionGuid: e.guid ?? `00000000-0000-0000-0000-${(i + 1).toString(16).padStart(12, '0')}`,
      startingLba: e.first,
      endingLba: e.last,
      attributes: e.attributes ?? 0n,
      partitionName: e.name ?? '',
    }, array, i * entrySize);
  });
  if (spec.protectiveMbr ?? true) {
    dev.sectors.set(0, serializeMbr({
      partitions: [{ startSector: 1, sectors: Math.min(lastLba, 0xffffffff), type: 0xee, chsStart: { cylinder: 0, head: 0, sector: 2 }, chsEnd: CHS_SENTINEL }],
    }));
  }
  const common = {
    revision: GPT_REVISION_1_0,
    firstUsableLba: spec.firstUsable ?? 2 + arraySectors,
    lastUsableLba: spec.lastUsable ?? lastLba - 1 - arraySectors,
    diskGuid: '12345678-9ABC-DEF0-1234-56789ABCDEF0',
    numberOfPartitionEntries: count,
    sizeOfPartitionEntry: entrySize,
    partitionEntryArrayCrc32: crc32(array.subarray(0, count * entrySize)),
  };
  const backupArrayLba = lastLba - arraySectors;
  for (let i = 0; i < arraySectors; i++) {
    dev.sectors.set(2 + i, array.slice(i * 512, i * 512 + 512));
    dev.sectors.set(backupArrayLba + i, array.slice(i * 512, i * 512 + 512));
  }
  dev.sectors.set(1, serializeGptHeader({ ...common, myLba: 1, alternateLba: lastLba, partitionEntryLba: 2 }));
  dev.sectors.set(lastLba, serializeGptHeader({ ...common, myLba: lastLba, alternateLba: 1, partitionEntryLba: backupArrayLba }));
}

/**
 * After mutating a GPT header or its array, recompute both CRCs so the parser's later
 * checks are reached. Leaves things alone when the header's own fields make that impossible.
 */
export async function fixGptCrcs(dev: SectorMapDevice, headerLba: number): Promise<void> {
  const header = dev.sector(headerLba);
  const hv = new DataView(header.buffer, header.byteOffset, 512);
  const headerSize = hv.getUint32(12, true);
  const count = hv.getUint32(80, true);
  const size = hv.getUint32(84, true);
  const arrayLba = Number(hv.getBigUint64(72, true));
  const bytes = count * size;
  if (bytes > 0 && bytes <= 1024 * 1024 && Number.isSafeInteger(arrayLba) && (arrayLba * 512 + bytes) <= dev.size) {
    const array = new Uint8Array(bytes);
    await dev.read(array, arrayLba * 512);
    hv.setUint32(88, crc32(array), true);
  }
  if (headerSize >= 92 && headerSize <= 512) {
    const copy = header.slice(0, headerSize);
    copy.fill(0, 16, 20);
    hv.setUint32(16, crc32(copy), true);
  }
}
