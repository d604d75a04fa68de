import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpe2fsHeader, requireTools, run, sfdiskImage, sfdiskJson, tmpDir, type TmpDir } from '@amitrans/testkit';
import type { ImageInfo } from '@amitrans/diskimg';
import { cli } from './helpers.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(async () => {
  await dir.remove();
});

async function infoJson(path: string): Promise<ImageInfo> {
  const r = await cli('info', path, '--json');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as ImageInfo;
}

const MiB = 1024 * 1024;

describe('info --json partitions equal sfdisk --json', () => {
  const layouts: Record<string, string> = {
    'one partition at 2048': 'label: dos\nstart=2048, type=83, bootable\n',
    'one partition at 63': 'label: dos\nstart=63, size=60000, type=83\n',
    'four primaries': 'label: dos\nstart=2048, size=8192, type=83, bootable\nsize=8192, type=82\nsize=8192, type=7\nsize=8192, type=c\n',
    'an extended partition with three logicals':
      'label: dos\nstart=2048, size=16384, type=83\nstart=18432, size=90000, type=5\nstart=20480, size=8192, type=83\nstart=30720, size=8192, type=82\nstart=40960, size=8192, type=83\n',
  };
  for (const [name, script] of Object.entries(layouts)) {
    it(name, async (ctx) => {
      requireTools(ctx, 'sfdisk');
      const path = dir.file(`${name.replace(/\W+/g, '-')}.img`);
      await sfdiskImage(path, 64 * MiB, script);
      const oracle = await sfdiskJson(path);
      const info = await infoJson(path);
      expect(info.format).toBe('raw');
      expect(info.partitionTable).toBe('mbr');
      expect(info.diskSignature).toBe(oracle.id);
      if (name.includes('logicals')) expect(info.partitions.filter((p) => p.kind === 'logical').map((p) => p.index)).toEqual([5, 6, 7]);
      expect(info.partitions.map((p) => ({
        node: `${path}${p.index}`,
        start: p.startSector,
        size: p.sectors,
        type: p.type.replace(/^0x0?/, ''),
        ...(p.bootable ? { bootable: true } : {}),
      }))).toEqual(oracle.partitions);
      for (const p of info.partitions) {
        expect(p.start).toBe(p.startSector * 512);
        expect(p.size).toBe(p.sectors * 512);
      }
    });
  }

  it('a GPT disk is reported as GPT, not misread as MBR', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const path = dir.file('gpt.img');
    await sfdiskImage(path, 64 * MiB, 'label: gpt\nstart=2048, size=16384, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"\nsize=8192, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name="swap"\n');
    const oracle = await sfdiskJson(path);
    expect(oracle.label).toBe('gpt');
    const info = await infoJson(path);
    expect(info.partitionTable).toBe('gpt');
    expect(info.partitions.map((p) => ({ node: `${path}${p.index}`, start: p.startSector, size: p.sectors, type: p.type.toUpperCase(), name: p.name })))
      .toEqual(oracle.partitions.map((p) => ({ node: p.node, start: p.start, size: p.size, type: p.type.toUpperCase(), name: p.name })));
  });
});

describe('ext facts equal dumpe2fs -h', () => {
  const kinds: [string, string, string[]][] = [
    ['ext2', 'mkfs.ext2', []],
    ['ext3 with 128-byte inodes', 'mkfs.ext3', ['-I', '128']],
    ['ext3 with 256-byte inodes', 'mkfs.ext3', []],
    ['ext4', 'mkfs.ext4', ['-L', 'cloudimg-rootfs']],
  ];
  function expectFactsMatch(fs: ImageInfo['filesystem'], d: Map<string, string>, type: string): void {
    expect(fs).not.toBeNull();
    expect(fs!.type).toBe(type);
    expect(fs!.label).toBe(d.get('Filesystem volume name') === '<none>' ? '' : d.get('Filesystem volume name'));
    expect(fs!.uuid).toBe(d.get('Filesystem UUID'));
    expect(fs!.blockSize).toBe(Number(d.get('Block size')));
    expect(fs!.inodeSize).toBe(Number(d.get('Inode size')));
    expect(fs!.blocksTotal).toBe(Number(d.get('Block count')));
    expect(fs!.blocksFree).toBe(Number(d.get('Free blocks')));
    expect(fs!.inodesTotal).toBe(Number(d.get('Inode count')));
    expect(fs!.inodesFree).toBe(Number(d.get('Free inodes')));
    expect(fs!.state).toBe(d.get('Filesystem state'));
    expect(fs!.features.join(' ')).toBe(d.get('Filesystem features'));
  }
  for (const [name, mkfs, args] of kinds) {
    const type = mkfs.slice(5);
    it(`${name}, bare`, async (ctx) => {
      requireTools(ctx, mkfs, 'dumpe2fs');
      const path = dir.file(`${name.replace(/\W+/g, '-')}.fs`);
      await run(mkfs, ['-q', '-F', ...args, path, '24M']);
      const info = await infoJson(path);
      expect(info.partitionTable).toBe('none');
      expect(info.partitions).toEqual([]);
      expectFactsMatch(info.filesystem, await dumpe2fsHeader(path), type);
    });
    it(`${name}, inside a partition`, async (ctx) => {
      requireTools(ctx, mkfs, 'dumpe2fs', 'sfdisk');
      const path = dir.file(`${name.replace(/\W+/g, '-')}.disk`);
      await sfdiskImage(path, 40 * MiB, 'label: dos\nstart=2048, size=49152, type=83, bootable\n');
      await run(mkfs, ['-q', '-F', ...args, '-E', `offset=${2048 * 512}`, path, `${(49152 * 512) / 1024}`]);
      const info = await infoJson(path);
      expect(info.filesystem).toBeNull();
      expect(info.partitions).toHaveLength(1);
      expectFactsMatch(info.partitions[0]!.filesystem, await dumpe2fsHeader(`${path}?offset=${2048 * 512}`), type);
    });
  }
});

describe('info errors and exit codes', () => {
  it('names the file and exits 1 when it cannot be read', async () => {
    const r = await cli('info', dir.file('nope.img'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nope.img');
    expect(r.stdout).toBe('');
  });
  it('exits 2 on a usage error', async () => {
    expect((await cli('info')).code).toBe(2);
    expect((await cli('frobnicate')).code).toBe(2);
    expect((await cli('info', 'a', '--no-such-flag')).code).toBe(2);
  });
  it('names the file, structure and offset of a damaged EBR chain', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const path = dir.file('loop.img');
    await sfdiskImage(path, 64 * MiB, 'label: dos\nstart=2048, size=90000, type=5\nstart=4096, size=8192, type=83\nstart=14336, size=8192, type=83\n');
    // Point the first EBR's link entry back at itself: an EBR loop.
    const { open } = await import('node:fs/promises');
    const fh = await open(path, 'r+');
    const ebr = Buffer.alloc(512);
    await fh.read(ebr, 0, 512, 2048 * 512);
    ebr.writeUInt8(0x05, 0x1be + 16 + 4);
    ebr.writeUInt32LE(0, 0x1be + 16 + 8);
    ebr.writeUInt32LE(90000, 0x1be + 16 + 12);
    await fh.write(ebr, 0, 512, 2048 * 512);
    await fh.close();
    const r = await cli('info', path, '--json');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(path);
    expect(r.stderr).toMatch(/EBR/);
    expect(r.stderr).toMatch(/byte \d+/);
    expect(r.stdout).toBe('');
  });
  it('human output is readable at a glance', async (ctx) => {
    requireTools(ctx, 'mkfs.ext3');
    const path = dir.file('human.fs');
    await run('mkfs.ext3', ['-q', '-F', '-L', 'root', path, '16M']);
    const r = await cli('info', path);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^file: +.*human\.fs$/m);
    expect(r.stdout).toMatch(/^format: +raw$/m);
    expect(r.stdout).toMatch(/^virtual size: +16 MiB \(16777216 bytes\)$/m);
    expect(r.stdout).toMatch(/bare filesystem/);
    expect(r.stdout).toMatch(/^filesystem: ext3, label "root"/m);
  });
});
