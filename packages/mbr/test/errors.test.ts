import { describe, expect, it } from 'vitest';
import { ImageError } from '@amitrans/block';
import {
  partitionTypeName,
  readPartitionTable,
  serializeMbr,
  serializeMbrSector,
  type MbrPartitionSpec,
  type PartitionEntry,
  type PartitionTable,
} from '../src/index.js';
import { outcome } from '@amitrans/testkit';
import { fixGptCrcs, LINUX_GUID, type GptEntrySpec, MiB, SectorMapDevice, writeGpt } from './helpers.js';

const SIZE = 64 * MiB;
const SECTORS = SIZE / 512;

function entry(firstLba: number, sectorCount: number, type: number, status = 0): PartitionEntry {
  const chs = { cylinder: 0, head: 0, sector: 1 };
  return { status, firstChs: chs, type, lastChs: chs, firstLba, sectorCount };
}

function mbrDisk(partitions: MbrPartitionSpec[], size = SIZE): SectorMapDevice {
  const dev = new SectorMapDevice(size);
  dev.sectors.set(0, serializeMbr({ partitions, diskSignature: 0x1234 }));
  return dev;
}

/** An EBR: entry 1 the logical (relative to this EBR), entry 2 the link (relative to the extended start). */
function ebr(logical?: [number, number, number?], link?: [number, number, number?]): Uint8Array {
  const entries: PartitionEntry[] = [];
  entries.push(logical ? entry(logical[0], logical[1], logical[2] ?? 0x83) : entry(0, 0, 0));
  if (link) entries.push(entry(link[0], link[1], link[2] ?? 0x05));
  return serializeMbrSector({ entries });
}

const EXT = 10000;
const EXT_SIZE = 100000;
/** A disk with an extended partition at sector EXT and the given EBRs (sector -> bytes). */
function extendedDisk(ebrs: Record<number, Uint8Array>): SectorMapDevice {
  const dev = mbrDisk([{ startSector: 2048, sectors: 4096, type: 0x83 }, { startSector: EXT, sectors: EXT_SIZE, type: 0x05 }]);
  for (const [lba, bytes] of Object.entries(ebrs)) dev.sectors.set(Number(lba), bytes);
  return dev;
}

async function read(dev: SectorMapDevice, maxLogicals?: number): Promise<PartitionTable> {
  return readPartitionTable(dev, maxLogicals === undefined ? {} : { maxLogicals });
}

function flip(buf: Uint8Array, at: number): void {
  buf[at] = (buf[at] ?? 0) ^ 1;
}

async function errorOf(p: Promise<unknown>): Promise<ImageError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ImageError) return err;
    throw err;
  }
  throw new Error('expected an ImageError');
}

describe('MBR: hand-made damage', () => {
  it('no 0x55AA, or a status byte other than 0x00/0x80, is not a partition table', async () => {
    const dev = mbrDisk([{ startSector: 2048, sectors: 1000, type: 0x83 }]);
    dev.sector(0)[511] = 0;
    expect(await read(dev)).toMatchObject({ scheme: 'none', reason: expect.stringMatching(/0x55AA/) });
    const dev2 = mbrDisk([{ startSector: 2048, sectors: 1000, type: 0x83 }]);
    dev2.sector(0)[0x1be + 16] = 0x12;
    expect(await read(dev2)).toMatchObject({ scheme: 'none', reason: expect.stringMatching(/entry 2 .*0x12/) });
  });

  it('a FAT superfloppy boot sector (jump, BPB, zero entries, 0x55AA) is not a partition table', async () => {
    const dev = new SectorMapDevice(SIZE);
    const s = dev.sector(0);
    s.set([0xeb, 0x3c, 0x90, ...new TextEncoder().encode('mkfs.fat'), 0x00, 0x02, 0x04], 0);
    s[510] = 0x55;
    s[511] = 0xaa;
    expect(await read(dev)).toMatchObject({ scheme: 'none', reason: expect.stringMatching(/volume boot record/) });
  });

  it('an entry past the end of the disk is E_OUT_OF_RANGE, naming the entry offset', async () => {
    const err = await errorOf(read(mbrDisk([{ startSector: 2048, sectors: SECTORS, type: 0x83 }])));
    expect(err).toMatchObject({ code: 'E_OUT_OF_RANGE', structure: 'MBR', offset: 0x1be });
    // The same table on a disk just big enough is fine.
    expect((await read(mbrDisk([{ startSector: 2048, sectors: SECTORS - 2048, type: 0x83 }]))).partitions).toHaveLength(1);
  });

  it('overlapping primaries, or a partition over the MBR itself, are E_OVERLAP', async () => {
    const dev = mbrDisk([]);
    dev.sectors.set(0, serializeMbrSector({ entries: [entry(2048, 4096, 0x83), entry(4000, 100, 0x83)] }));
    expect(await errorOf(read(dev))).toMatchObject({ code: 'E_OVERLAP', structure: 'MBR' });
    dev.sectors.set(0, serializeMbrSector({ entries: [entry(0, 4096, 0x83)] }));
    expect((await errorOf(read(dev))).code).toBe('E_OVERLAP');
  });

  it('two extended partitions are E_UNSUPPORTED', async () => {
    const dev = mbrDisk([{ startSector: 2048, sectors: 4096, type: 0x05 }, { startSector: 8192, sectors: 4096, type: 0x0f }]);
    expect((await errorOf(read(dev))).code).toBe('E_UNSUPPORTED');
  });

  it('empty slots keep their numbers; a zero-length slot is skipped; type 0 with sectors is still a partition', async () => {
    const dev = mbrDisk([]);
    dev.sectors.set(0, serializeMbrSector({ entries: [entry(0, 0, 0x83, 0x80), entry(0, 0, 0), entry(4096, 100, 0)] }));
    const t = await read(dev);
    expect(t.partitions.map((p) => [p.index, p.type])).toEqual([[3, 0]]);
  });
});

describe('EBR chain: hand-made damage', () => {
  it('a blank first EBR means no logicals', async () => {
    const t = await read(extendedDisk({}));
    expect(t.partitions.map((p) => p.kind)).toEqual(['primary', 'extended']);
  });

  it('a well-formed chain, with an EBR that has no logical (not numbered)', async () => {
    const t = await read(extendedDisk({
      [EXT]: ebr([2048, 1000], [5000, 3000]),
      [EXT + 5000]: ebr(undefined, [9000, 3000]),
      [EXT + 9000]: ebr([63, 500]),
    }));
    expect(t.partitions.map((p) => [p.index, p.startSector, p.sectors])).toEqual([
      [1, 2048, 4096], [2, EXT, EXT_SIZE], [5, EXT + 2048, 1000], [6, EXT + 9063, 500],
    ]);
  });

  it('an EBR linking to itself, or two EBRs linking to each other, is E_LOOP', async () => {
    expect(await errorOf(read(extendedDisk({ [EXT]: ebr([2048, 10], [0, 100]) })))).toMatchObject({
      code: 'E_LOOP', structure: 'EBR', offset: EXT * 512 + 0x1ce,
    });
    expect((await errorOf(read(extendedDisk({
      [EXT]: ebr([2048, 10], [5000, 100]),
      [EXT + 5000]: ebr([10, 10], [0, 100]),
    })))).code).toBe('E_LOOP');
    expect((await errorOf(read(extendedDisk({
      [EXT]: ebr([2048, 10], [5000, 100]),
      [EXT + 5000]: ebr([10, 10], [7000, 100]),
      [EXT + 7000]: ebr([10, 10], [5000, 100]),
    })))).code).toBe('E_LOOP');
  });

  it('links and logicals outside the extended partition are E_OUT_OF_RANGE', async () => {
    expect(await errorOf(read(extendedDisk({ [EXT]: ebr([2048, 10], [EXT_SIZE, 100]) })))).toMatchObject({
      code: 'E_OUT_OF_RANGE', offset: EXT * 512 + 0x1ce,
    });
    expect((await errorOf(read(extendedDisk({ [EXT]: ebr([2048, 10], [0xffffff00, 100]) })))).code).toBe('E_OUT_OF_RANGE');
    expect(await errorOf(read(extendedDisk({ [EXT]: ebr([2048, EXT_SIZE]) })))).toMatchObject({
      code: 'E_OUT_OF_RANGE', offset: EXT * 512 + 0x1be,
    });
  });

  it('logicals over EBRs or over each other are E_OVERLAP', async () => {
    // The first logical covers the second EBR.
    expect((await errorOf(read(extendedDisk({
      [EXT]: ebr([1, 9000], [5000, 100]),
      [EXT + 5000]: ebr([10, 10]),
    })))).code).toBe('E_OVERLAP');
    // Two logicals over the same sectors.
    expect((await errorOf(read(extendedDisk({
      [EXT]: ebr([100, 1000], [500, 1000]),
      [EXT + 500]: ebr([10, 100]),
    })))).code).toBe('E_OVERLAP');
    // A logical at offset 0 covers its own EBR.
    expect((await errorOf(read(extendedDisk({ [EXT]: ebr([0, 100]) })))).code).toBe('E_OVERLAP');
  });

  it('a linked EBR without 0x55AA is E_BAD_MAGIC', async () => {
    expect(await errorOf(read(extendedDisk({ [EXT]: ebr([2048, 10], [5000, 100]) })))).toMatchObject({
      code: 'E_BAD_MAGIC', structure: 'EBR', offset: (EXT + 5000) * 512,
    });
  });

  it('a link that is not of an extended type, or an extended type in entry 1, is E_CORRUPT', async () => {
    expect((await errorOf(read(extendedDisk({ [EXT]: ebr([2048, 10], [5000, 100, 0x83]) })))).code).toBe('E_CORRUPT');
    expect((await errorOf(read(extendedDisk({ [EXT]: ebr([2048, 10, 0x05]) })))).code).toBe('E_CORRUPT');
  });

  it('a chain longer than the bound is E_TOO_LARGE, without reading on', async () => {
    const ebrs: Record<number, Uint8Array> = {};
    for (let i = 0; i < 1100; i++) ebrs[EXT + i * 4] = ebr([1, 2], [(i + 1) * 4, 3]);
    expect((await errorOf(read(extendedDisk(ebrs))))).toMatchObject({ code: 'E_TOO_LARGE' });
    expect((await errorOf(read(extendedDisk(ebrs), 10)))).toMatchObject({ code: 'E_TOO_LARGE' });
    // 1000 links are fine, and numbered 5..1004.
    const ok: Record<number, Uint8Array> = {};
    for (let i = 0; i < 1000; i++) ok[EXT + i * 4] = ebr([1, 2], i < 999 ? [(i + 1) * 4, 3] : undefined);
    const t = await read(extendedDisk(ok));
    expect(t.partitions.at(-1)).toMatchObject({ index: 1004, kind: 'logical', startSector: EXT + 999 * 4 + 1 });
  });
});

describe('GPT: hand-made damage', () => {
  function gptDisk(entries: GptEntrySpec[] = [{ first: 2048, last: 4095, name: 'one' }, { first: 4096, last: 100000, name: 'two' }]): SectorMapDevice {
    const dev = new SectorMapDevice(SIZE);
    writeGpt(dev, { entries });
    return dev;
  }

  it('a good GPT reads, and never as MBR: hybrid MBRs too', async () => {
    const t = await read(gptDisk());
    expect(t).toMatchObject({ scheme: 'gpt', warnings: [] });
    expect(t.partitions.map((p) => [p.index, p.type, p.startSector, p.sectors])).toEqual([
      [1, LINUX_GUID, 2048, 2048], [2, LINUX_GUID, 4096, 100000 - 4096 + 1],
    ]);
    const hybrid = gptDisk();
    hybrid.sectors.set(0, serializeMbr({ partitions: [{ startSector: 1, sectors: 2047, type: 0xee }, { startSector: 2048, sectors: 2048, type: 0x0c, bootable: true }] }));
    expect((await read(hybrid)).scheme).toBe('gpt');
  });

  it('a GPT without a protective MBR but with a valid header is still GPT, with a warning', async () => {
    const dev = gptDisk();
    dev.sectors.delete(0);
    const t = await read(dev);
    expect(t.scheme).toBe('gpt');
    expect(t.warnings.join()).toMatch(/no MBR boot signature/);
  });

  it('a protective MBR with no GPT behind it is E_BAD_MAGIC, not "none" and not MBR', async () => {
    const dev = gptDisk();
    dev.sectors.delete(1);
    dev.sectors.delete(SECTORS - 1);
    expect(await errorOf(read(dev))).toMatchObject({ code: 'E_BAD_MAGIC', structure: 'GPT header', offset: 512 });
  });

  it('bad header CRC or entry-array CRC falls back to the backup; both bad is E_BAD_CHECKSUM', async () => {
    const dev = gptDisk();
    flip(dev.sector(1), 60);
    const t = await read(dev);
    expect(t.scheme === 'gpt' && t.partitions.map((p) => p.name)).toEqual(['one', 'two']);
    expect(t.warnings.join()).toMatch(/CRC32/);
    flip(dev.sector(SECTORS - 1), 60);
    expect(await errorOf(read(dev))).toMatchObject({ code: 'E_BAD_CHECKSUM', offset: 512 + 16 });
    const dev2 = gptDisk();
    flip(dev2.sector(2), 100);
    flip(dev2.sector(SECTORS - 33), 100);
    expect(await errorOf(read(dev2))).toMatchObject({ code: 'E_BAD_CHECKSUM', structure: 'GPT partition entry array', offset: 1024 });
  });

  /** Change the primary header with `edit`, fix its CRCs, and drop the backup so the primary's error shows. */
  async function primaryError(edit: (h: DataView, dev: SectorMapDevice) => void, entries?: Parameters<typeof gptDisk>[0]): Promise<ImageError> {
    const dev = gptDisk(entries);
    const h = dev.sector(1);
    edit(new DataView(h.buffer, h.byteOffset, 512), dev);
    await fixGptCrcs(dev, 1);
    dev.sectors.delete(SECTORS - 1);
    return errorOf(read(dev));
  }

  it('an absurd entry count is E_TOO_LARGE before anything is allocated', async () => {
    expect(await primaryError((h) => h.setUint32(80, 0xffffffff, true))).toMatchObject({ code: 'E_TOO_LARGE', offset: 512 + 80 });
  });

  it('entry sizes that are not 128 x 2^n, a wrong MyLBA or a bad header size are E_CORRUPT', async () => {
    expect((await primaryError((h) => h.setUint32(84, 100, true))).code).toBe('E_CORRUPT');
    expect((await primaryError((h) => h.setUint32(84, 384, true))).code).toBe('E_CORRUPT');
    expect((await primaryError((h) => h.setBigUint64(24, 7n, true))).code).toBe('E_CORRUPT');
    expect((await primaryError((h) => h.setUint32(12, 20, true))).code).toBe('E_CORRUPT');
    expect((await primaryError((h) => h.setUint32(12, 4096, true))).code).toBe('E_CORRUPT');
  });

  it('an entry array past the disk end, or an entry outside the disk or usable range, is E_OUT_OF_RANGE', async () => {
    expect((await primaryError((h) => h.setBigUint64(72, BigInt(SECTORS - 2), true))).code).toBe('E_OUT_OF_RANGE');
    expect((await primaryError((h) => h.setBigUint64(72, 2n ** 52n, true))).code).toBe('E_OUT_OF_RANGE');
    expect((await primaryError(() => {}, [{ first: 2048, last: SECTORS + 5, name: 'x' }])).code).toBe('E_OUT_OF_RANGE');
    expect((await primaryError(() => {}, [{ first: 10, last: 4095, name: 'x' }])).code).toBe('E_OUT_OF_RANGE');
    expect((await primaryError(() => {}, [{ first: SECTORS - 10, last: SECTORS - 2, name: 'x' }])).code).toBe('E_OUT_OF_RANGE');
  });

  it('overlapping entries, or a usable range over the entry array, are E_OVERLAP', async () => {
    expect(await primaryError(() => {}, [{ first: 2048, last: 4095 }, { first: 4000, last: 5000 }])).toMatchObject({
      code: 'E_OVERLAP', structure: 'GPT partition entry', offset: 1024 + 128,
    });
    expect((await primaryError((h) => h.setBigUint64(40, 1n, true), [{ first: 20, last: 4095 }])).code).toBe('E_OVERLAP');
  });

  it('an entry that ends before it starts is E_CORRUPT; LBAs beyond 2^53 are E_TOO_LARGE', async () => {
    expect((await primaryError(() => {}, [{ first: 5000, last: 4095 }])).code).toBe('E_CORRUPT');
    expect((await primaryError((_h, dev) => {
      new DataView(dev.sector(2).buffer).setBigUint64(32, 2n ** 60n, true);
    })).code).toBe('E_TOO_LARGE');
  });

  it('a GPT laid out for 4096-byte sectors is E_UNSUPPORTED', async () => {
    const dev = gptDisk();
    const header = dev.sector(1).slice();
    dev.sectors.delete(1);
    dev.sectors.delete(SECTORS - 1);
    dev.sectors.set(8, header);
    expect((await errorOf(read(dev))).code).toBe('E_UNSUPPORTED');
  });

  it('a disk too small for the GPT header is a typed error', async () => {
    const dev = new SectorMapDevice(512);
    dev.sectors.set(0, serializeMbr({ partitions: [{ startSector: 1, sectors: 1, type: 0xee }] }));
    expect(await outcome(read(dev))).toMatch(/^E_/);
  });
});

describe('partitionTypeName', () => {
  it('names the common types', () => {
    expect([0x83, 0x82, 0x05, 0x0f, 0x07, 0x0b, 0x0c, 0xee, 0xef, 0x8e, 0xfd].map(partitionTypeName)).toEqual([
      'Linux', 'Linux swap', 'Extended', 'W95 Extended (LBA)', 'HPFS/NTFS/exFAT', 'W95 FAT32', 'W95 FAT32 (LBA)',
      'GPT', 'EFI (FAT-12/16/32)', 'Linux LVM', 'Linux raid autodetect',
    ]);
    expect(partitionTypeName(0x42)).toBe('Unknown (0x42)');
  });
});
