import { open, readFile, truncate, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDevice, ImageError, MemoryDevice } from '@amitrans/block';
import { sfdiskJson, sfdiskImage, requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import { CHS_SENTINEL, createMbr, readPartitionTable, serializeMbr, type CreateMbrOptions } from '../src/index.js';
import { asSfdisk, MiB, oracleFields } from './helpers.js';

const GiB = 1024 * MiB;
let tmp: TmpDir;
beforeAll(async () => { tmp = await tmpDir('amitrans-mbr-write-'); });
afterAll(async () => { await tmp.remove(); });

/** Write createMbr's sector into a sparse file of the disk's size. */
async function diskWith(name: string, options: CreateMbrOptions): Promise<{ path: string; sector: Uint8Array }> {
  const path = tmp.file(name);
  const { sector } = createMbr(options);
  await writeFile(path, sector);
  await truncate(path, options.diskSize);
  return { path, sector };
}

async function sector0(path: string): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(512);
    await fh.read(buf, 0, 512, 0);
    return buf;
  } finally {
    await fh.close();
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('createMbr, checked by sfdisk', () => {
  const cases: { name: string; options: CreateMbrOptions; script: string }[] = [
    { name: 'modern, 64 MiB', options: { diskSize: 64 * MiB, diskSignature: 0xdeadbeef },
      script: 'label: dos\nlabel-id: 0xdeadbeef\nstart=2048, type=83, bootable\n' },
    { name: 'legacy, 64 MiB', options: { diskSize: 64 * MiB, diskSignature: 0x01020304, align: 'legacy' },
      script: 'label: dos\nlabel-id: 0x01020304\nstart=63, type=83, bootable\n' },
    { name: 'modern, 10 GiB (end past the CHS limit)', options: { diskSize: 10 * GiB, diskSignature: 0xcafe0001 },
      script: 'label: dos\nlabel-id: 0xcafe0001\nstart=2048, type=83, bootable\n' },
    { name: 'legacy, 10 GiB', options: { diskSize: 10 * GiB, diskSignature: 0xcafe0002, align: 'legacy' },
      script: 'label: dos\nlabel-id: 0xcafe0002\nstart=63, type=83, bootable\n' },
    { name: 'partitionSize, FAT32 type, not bootable', options: { diskSize: 64 * MiB, diskSignature: 7, partitionSize: 20 * MiB, type: 0x0c, bootable: false },
      script: 'label: dos\nlabel-id: 0x00000007\nstart=2048, size=40960, type=c\n' },
    { name: 'a disk size that is not a whole number of sectors', options: { diskSize: 64 * MiB + 300, diskSignature: 0x5555aaaa },
      script: 'label: dos\nlabel-id: 0x5555aaaa\nstart=2048, type=83, bootable\n' },
  ];

  for (const c of cases) {
    it(`${c.name}: same bytes as sfdisk writes, sfdisk --verify is clean, and it reads back`, async (ctx) => {
      requireTools(ctx, 'sfdisk');
      const ours = await diskWith(`ours-${cases.indexOf(c)}.img`, c.options);
      const theirsPath = tmp.file(`theirs-${cases.indexOf(c)}.img`);
      await sfdiskImage(theirsPath, c.options.diskSize, c.script);
      // The strongest oracle: sector 0 byte for byte, CHS included.
      expect(hex(ours.sector)).toBe(hex(await sector0(theirsPath)));

      const verify = await run('sfdisk', ['--verify', ours.path]);
      expect(verify.stdout).toMatch(/No errors detected/);
      const oracle = await sfdiskJson(ours.path);
      const created = createMbr(c.options);
      const dev = await FileDevice.open(ours.path);
      try {
        const table = await readPartitionTable(dev);
        expect(asSfdisk(table, oracle.device)).toEqual(oracleFields(oracle));
        expect(table.partitions).toEqual([created.partition]);
      } finally {
        await dev.close();
      }
    });
  }

  it('a 3 TiB disk: the partition stops at sector 2^32 - 1, as sfdisk does', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const options = { diskSize: 3 * 1024 * GiB, diskSignature: 0x11223344 };
    const created = createMbr(options);
    expect(created.partition.startSector + created.partition.sectors).toBe(2 ** 32);
    const theirs = tmp.file('theirs-3t.img');
    await sfdiskImage(theirs, options.diskSize, 'label: dos\nlabel-id: 0x11223344\nstart=2048, type=83, bootable\n');
    expect(hex(created.sector)).toBe(hex(await sector0(theirs)));
  });

  it('boot code goes into the first 440 bytes and nothing else moves', () => {
    const bootCode = new Uint8Array(440).map((_, i) => (i * 7 + 1) & 0xff);
    const plain = createMbr({ diskSize: 64 * MiB, diskSignature: 9 });
    const withCode = createMbr({ diskSize: 64 * MiB, diskSignature: 9, bootCode });
    expect(hex(withCode.sector.subarray(0, 440))).toBe(hex(bootCode));
    expect(hex(withCode.sector.subarray(440))).toBe(hex(plain.sector.subarray(440)));
    expect(() => createMbr({ diskSize: 64 * MiB, bootCode: new Uint8Array(441) })).toThrow(ImageError);
  });

  it('a given disk signature is deterministic; a random one is non-zero and varies', () => {
    expect(hex(createMbr({ diskSize: 8 * MiB, diskSignature: 42 }).sector)).toBe(hex(createMbr({ diskSize: 8 * MiB, diskSignature: 42 }).sector));
    const sigs = new Set(Array.from({ length: 20 }, () => createMbr({ diskSize: 8 * MiB }).diskSignature));
    expect(sigs.size).toBeGreaterThan(15);
    expect(sigs.has(0)).toBe(false);
  });

  it('CHS of a partition end past cylinder 1023 is the FE FF FF sentinel', () => {
    const { sector, partition } = createMbr({ diskSize: 10 * GiB, diskSignature: 1 });
    expect(partition.chsEnd).toEqual(CHS_SENTINEL);
    expect(hex(sector.subarray(0x1be + 5, 0x1be + 8))).toBe('feffff');
  });

  it('rejects what cannot be built, with typed errors', () => {
    const code = (f: () => unknown): string => {
      try { f(); return 'ok'; } catch (err) { return err instanceof ImageError ? err.code : 'not an ImageError'; }
    };
    expect(code(() => createMbr({ diskSize: 1024 * 1024 }))).toBe('E_OUT_OF_RANGE');
    expect(code(() => createMbr({ diskSize: 1024 * 1024, align: 'legacy' }))).toBe('ok');
    expect(code(() => createMbr({ diskSize: 64 * MiB, partitionSize: 64 * MiB }))).toBe('E_OUT_OF_RANGE');
    expect(code(() => createMbr({ diskSize: 4 * 1024 * GiB, partitionSize: 3 * 1024 * GiB }))).toBe('E_TOO_LARGE');
    expect(code(() => createMbr({ diskSize: -1 }))).toBe('E_BAD_OFFSET');
    expect(code(() => createMbr({ diskSize: 64 * MiB, partitionSize: 0 }))).toBe('E_BAD_OFFSET');
    expect(code(() => createMbr({ diskSize: 64 * MiB, type: 0x05 }))).toBe('E_UNSUPPORTED');
    expect(code(() => createMbr({ diskSize: 64 * MiB, type: 0xee }))).toBe('E_UNSUPPORTED');
    expect(code(() => createMbr({ diskSize: 64 * MiB, diskSignature: 2 ** 32 }))).toBe('E_TOO_LARGE');
    expect(code(() => createMbr({ diskSize: 64 * MiB, geometry: { heads: 256, sectorsPerTrack: 63 } }))).toBe('E_OUT_OF_RANGE');
  });
});

describe('serializeMbr', () => {
  it('writes four primaries that sfdisk reads as written', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const path = tmp.file('four-ours.img');
    const sector = serializeMbr({
      diskSignature: 0x0a0b0c0d,
      partitions: [
        { startSector: 2048, sectors: 10000, type: 0x0c, bootable: true },
        { startSector: 12048, sectors: 20000, type: 0x82 },
        { index: 4, startSector: 100000, sectors: 31072, type: 0x8e },
        { index: 3, startSector: 40000, sectors: 50000, type: 0x07 },
      ],
    });
    await writeFile(path, sector);
    await truncate(path, 64 * MiB);
    expect((await run('sfdisk', ['--verify', path])).stdout).toMatch(/No errors detected/);
    const oracle = await sfdiskJson(path);
    expect(oracle.partitions?.map((p) => [p.node.slice(path.length), p.start, p.size, p.type, p.bootable ?? false])).toEqual([
      ['1', 2048, 10000, 'c', true], ['2', 12048, 20000, '82', false], ['3', 40000, 50000, '7', false], ['4', 100000, 31072, '8e', false],
    ]);
    const back = await readPartitionTable(new MemoryDevice(await readFile(path)));
    expect(asSfdisk(back, path)).toEqual(oracleFields(oracle));
  });

  it('skips logicals (they live in EBRs) and rejects overlaps, bad slots and 32-bit overflow', () => {
    const code = (f: () => unknown): string => {
      try { f(); return 'ok'; } catch (err) { return err instanceof ImageError ? err.code : 'not an ImageError'; }
    };
    const ext = { startSector: 2048, sectors: 4096, type: 0x05, kind: 'extended' as const };
    const logical = { index: 5, startSector: 2049, sectors: 100, type: 0x83, kind: 'logical' as const };
    expect(code(() => serializeMbr({ partitions: [ext, logical] }))).toBe('ok');
    expect(code(() => serializeMbr({ partitions: [ext, { startSector: 4000, sectors: 10, type: 0x83 }] }))).toBe('E_OVERLAP');
    expect(code(() => serializeMbr({ partitions: [{ startSector: 0, sectors: 10, type: 0x83 }] }))).toBe('E_OVERLAP');
    expect(code(() => serializeMbr({ partitions: [{ index: 5, startSector: 1, sectors: 10, type: 0x83 }] }))).toBe('E_CORRUPT');
    expect(code(() => serializeMbr({ partitions: [{ index: 1, startSector: 1, sectors: 10, type: 0x83 }, { index: 1, startSector: 20, sectors: 10, type: 0x83 }] }))).toBe('E_CORRUPT');
    expect(code(() => serializeMbr({ partitions: [{ startSector: 2 ** 32, sectors: 10, type: 0x83 }] }))).toBe('E_TOO_LARGE');
    expect(code(() => serializeMbr({ partitions: [{ startSector: 1, sectors: 10, type: 0x183 }] }))).toBe('E_TOO_LARGE');
    expect(code(() => serializeMbr({ partitions: [{ startSector: 1, sectors: 10, type: 0x83 }], diskSize: 5 * 512 }))).toBe('E_OUT_OF_RANGE');
    const five = Array.from({ length: 5 }, (_, i) => ({ startSector: 1 + i * 10, sectors: 10, type: 0x83 }));
    expect(code(() => serializeMbr({ partitions: five }))).toBe('E_TOO_LARGE');
  });
});
