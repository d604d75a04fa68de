import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDevice } from '@amitrans/block';
import { sfdiskJson, sfdiskImage, requireTools, tmpDir, type TmpDir } from '@amitrans/testkit';
import { parseMbrSector, readPartitionTable, serializeMbr, type PartitionTable } from '../src/index.js';
import { asSfdisk, MiB, oracleFields } from './helpers.js';

let tmp: TmpDir;
beforeAll(async () => { tmp = await tmpDir('amitrans-mbr-oracle-'); });
afterAll(async () => { await tmp.remove(); });

async function readTable(path: string): Promise<PartitionTable> {
  const dev = await FileDevice.open(path);
  try {
    return await readPartitionTable(dev);
  } finally {
    await dev.close();
  }
}

/** Partition the file with sfdisk, read it back both ways, and compare every field sfdisk reports. */
async function checkAgainstSfdisk(name: string, script: string, size = 64 * MiB): Promise<PartitionTable> {
  const path = tmp.file(name);
  await sfdiskImage(path, size, script);
  const table = await readTable(path);
  const oracle = await sfdiskJson(path);
  expect(asSfdisk(table, oracle.device)).toEqual(oracleFields(oracle));
  expect(table.warnings).toEqual([]);
  return table;
}

/** serializeMbr of what was read gives back sector 0 byte for byte (CHS as read, boot code kept). */
async function checkRoundTrip(name: string, table: PartitionTable): Promise<void> {
  if (table.scheme !== 'mbr') throw new Error('not an MBR table');
  const sector0 = (await readFile(tmp.file(name))).subarray(0, 512);
  const again = serializeMbr({
    partitions: table.partitions,
    diskSignature: table.diskSignature,
    bootCode: parseMbrSector(sector0).bootCode,
  });
  expect(Buffer.from(again).equals(Buffer.from(sector0))).toBe(true);
}

describe('readPartitionTable against sfdisk --json', () => {
  it('one bootable partition at 2048', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const t = await checkAgainstSfdisk('one.img', 'label: dos\nlabel-id: 0x12345678\nstart=2048, type=83, bootable\n');
    expect(t).toMatchObject({ scheme: 'mbr', diskSignature: 0x12345678 });
    expect(t.partitions[0]).toMatchObject({ index: 1, kind: 'primary', startSector: 2048, start: MiB, size: 64 * MiB - MiB });
    await checkRoundTrip('one.img', t);
  });

  it('one partition at sector 63 (legacy alignment)', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const t = await checkAgainstSfdisk('legacy.img', 'label: dos\nlabel-id: 0x0badcafe\nstart=63, type=83\n');
    expect(t.partitions[0]).toMatchObject({ startSector: 63, sectors: 131072 - 63, bootable: false });
    expect(t.scheme === 'mbr' && t.partitions[0]?.chsStart).toEqual({ cylinder: 0, head: 1, sector: 1 });
    await checkRoundTrip('legacy.img', t);
  });

  it('four primaries of different types', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const t = await checkAgainstSfdisk('four.img', 'label: dos\n' +
      'size=8MiB, type=c\nsize=8MiB, type=82\nsize=8MiB, type=7, bootable\ntype=8e\n');
    expect(t.partitions.map((p) => [p.index, p.kind, p.type])).toEqual([[1, 'primary', 0x0c], [2, 'primary', 0x82], [3, 'primary', 0x07], [4, 'primary', 0x8e]]);
    await checkRoundTrip('four.img', t);
  });

  it('an extended partition with three logicals, numbered 5, 6, 7', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const t = await checkAgainstSfdisk('ext.img', 'label: dos\n' +
      'size=10MiB, type=83, bootable\nsize=10MiB, type=82\ntype=5\nsize=5MiB, type=83\nsize=5MiB, type=7\ntype=b\n');
    expect(t.partitions.map((p) => [p.index, p.kind])).toEqual([
      [1, 'primary'], [2, 'primary'], [3, 'extended'], [5, 'logical'], [6, 'logical'], [7, 'logical'],
    ]);
    await checkRoundTrip('ext.img', t);
  });

  it('an LBA extended partition (0x0f) in slot 2 with logicals, slot 1 and 3 free', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const script = 'label: dos\nunit: sectors\n' +
      'x2 : start=4096, size=100000, type=f\n' +
      'x5 : start=6144, size=20000, type=83\nx6 : start=30000, size=30000, type=fd\n' +
      'x4 : start=110000, size=10000, type=ef\n';
    const t = await checkAgainstSfdisk('ext-f.img', script);
    expect(t.partitions.map((p) => p.index)).toEqual([2, 4, 5, 6]);
  });

  it('an empty DOS label', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const t = await checkAgainstSfdisk('empty.img', 'label: dos\nlabel-id: 0x01020304\n');
    expect(t).toMatchObject({ scheme: 'mbr', partitions: [] });
  });

  it('a GPT disk with two named partitions', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const t = await checkAgainstSfdisk('gpt.img', 'label: gpt\n' +
      'size=10MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root fs"\n' +
      'type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI Système"\n');
    expect(t.scheme).toBe('gpt');
    if (t.scheme !== 'gpt') return;
    expect(t.partitions.map((p) => [p.index, p.name])).toEqual([[1, 'root fs'], [2, 'EFI Système']]);
    expect(t.lastUsableLba).toBe(131072 - 34);
  });

  it('a GPT disk with a gap in its entry array keeps the slot numbers', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const script = 'label: gpt\nunit: sectors\n' +
      'g3 : start=2048, size=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' +
      'g7 : start=8192, size=4096, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name="swap", attrs="LegacyBIOSBootable"\n';
    const t = await checkAgainstSfdisk('gpt-gap.img', script);
    expect(t.partitions.map((p) => [p.index, p.bootable])).toEqual([[3, false], [7, true]]);
    expect(t.scheme === 'gpt' && t.partitions.map((p) => p.attributes)).toEqual(['0000000000000000', '0000000000000004']);
    expect(JSON.parse(JSON.stringify(t))).toEqual(t);
  });

  it('a GPT disk whose primary header is damaged is read from the backup, with a warning', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const path = tmp.file('gpt-backup.img');
    await sfdiskImage(path, 16 * MiB, 'label: gpt\nsize=4MiB, name="a"\nname="b"\n');
    const oracle = await sfdiskJson(path);
    const { open } = await import('node:fs/promises');
    const fh = await open(path, 'r+');
    await fh.write(new Uint8Array(8), 0, 8, 512); // wipe "EFI PART" at LBA 1
    await fh.close();
    const t = await readTable(path);
    expect(t.scheme).toBe('gpt');
    expect(asSfdisk(t, oracle.device)).toEqual(oracleFields(oracle));
    expect(t.warnings.join()).toMatch(/backup/);
  });
});

describe('disks that are not partitioned', () => {
  it('a zeroed disk and a disk smaller than a sector are scheme none', async () => {
    const { MemoryDevice } = await import('@amitrans/block');
    expect(await readPartitionTable(new MemoryDevice(4096))).toMatchObject({ scheme: 'none', partitions: [] });
    expect(await readPartitionTable(new MemoryDevice(100))).toMatchObject({ scheme: 'none' });
  });

  it('an ext4 filesystem on the whole disk is scheme none', async (ctx) => {
    requireTools(ctx, 'mkfs.ext4');
    const path = tmp.file('fs.img');
    const { run } = await import('@amitrans/testkit');
    await run('mkfs.ext4', ['-q', '-F', path, '8M']);
    expect(await readTable(path)).toMatchObject({ scheme: 'none' });
  });
});
