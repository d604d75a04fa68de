import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDevice, ImageError, MemoryDevice, SliceDevice } from '@amitrans/block';
import { prng, requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import {
  extFacts,
  featureNames,
  parseSuperblock,
  probeExt,
  readSuperblock,
  superblockChecksum,
  type ExtFacts,
} from '../src/index.js';
import { MKFS_CASES, dumpe2fsHeader, num } from './helpers.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir('amitrans-extfs-sb-');
});
afterAll(async () => {
  await dir.remove();
});

const FS_SIZE = '16M';

async function mkfs(name: string, tool: string, args: readonly string[]): Promise<string> {
  const path = dir.file(`${name}.img`);
  await run('truncate', ['-s', FS_SIZE, path]);
  await run(tool, ['-q', '-F', ...args, path]);
  return path;
}

/** Every fact, as dumpe2fs -h states it. */
function factsFromDumpe2fs(d: Map<string, string>): Omit<ExtFacts, 'type'> {
  const label = d.get('Filesystem volume name')!;
  const features = d.get('Filesystem features')!;
  return {
    label: label === '<none>' ? '' : label,
    uuid: d.get('Filesystem UUID')!,
    blockSize: num(d, 'Block size'),
    // dumpe2fs prints no "Inode size" for revision 0, whose inodes are 128 bytes.
    inodeSize: d.has('Inode size') ? num(d, 'Inode size') : 128,
    blocksTotal: num(d, 'Block count'),
    blocksFree: num(d, 'Free blocks'),
    inodesTotal: num(d, 'Inode count'),
    inodesFree: num(d, 'Free inodes'),
    state: d.get('Filesystem state')!,
    features: features === '(none)' ? [] : features.split(/\s+/),
  };
}

async function blkidType(target: string, offset = 0): Promise<string> {
  const args = ['-p', '-o', 'value', '-s', 'TYPE'];
  if (offset > 0) args.push('-O', String(offset));
  // blkid exits 2 when it recognises nothing.
  return (await run('blkid', [...args, target]).catch(() => ({ stdout: '' }))).stdout.trim();
}

describe('superblock facts against dumpe2fs -h', () => {
  for (const c of MKFS_CASES) {
    it(`${c.name}: bare image`, async (ctx) => {
      requireTools(ctx, c.tool, 'dumpe2fs', 'blkid');
      const path = await mkfs(c.name, c.tool, c.args);
      const dev = await FileDevice.open(path);
      try {
        const facts = extFacts(await readSuperblock(dev));
        const { type, ...rest } = facts;
        expect(rest).toEqual(factsFromDumpe2fs(await dumpe2fsHeader(path)));
        expect(type).toBe(await blkidType(path));
        const head = new Uint8Array(2048);
        await dev.read(head, 0);
        expect(probeExt(head)).toBe(true);
      } finally {
        await dev.close();
      }
    });
  }

  for (const c of MKFS_CASES.filter((x) => ['ext2-labelled', 'ext3-i128', 'ext3', 'ext4-labelled'].includes(x.name))) {
    it(`${c.name}: inside an MBR partition, read through a SliceDevice`, async (ctx) => {
      requireTools(ctx, c.tool, 'dumpe2fs', 'sfdisk', 'blkid');
      const disk = dir.file(`${c.name}-disk.img`);
      await run('truncate', ['-s', '40M', disk]);
      await run('sfdisk', ['-q', disk], { input: 'start=2048, size=65536, type=83\n' });
      const table = JSON.parse((await run('sfdisk', ['--json', disk])).stdout) as {
        partitiontable: { partitions: { start: number; size: number }[] };
      };
      const part = table.partitiontable.partitions[0]!;
      const start = part.start * 512;
      const length = part.size * 512;
      await run(c.tool, ['-q', '-F', ...c.args, '-E', `offset=${start}`, disk, `${length / 1024}k`]);
      const file = await FileDevice.open(disk);
      try {
        const slice = new SliceDevice(file, start, length);
        const facts = extFacts(await readSuperblock(slice));
        const { type, ...rest } = facts;
        expect(rest).toEqual(factsFromDumpe2fs(await dumpe2fsHeader(`${disk}?offset=${start}`)));
        expect(type).toBe(await blkidType(disk, start));
        // The whole disk is not an ext filesystem (its byte 1080 is not the magic).
        const head = new Uint8Array(2048);
        await file.read(head, 0);
        expect(probeExt(head)).toBe(false);
        await expect(readSuperblock(file)).rejects.toMatchObject({ code: 'E_BAD_MAGIC', offset: 1080 });
      } finally {
        await file.close();
      }
    });
  }

  it('names every feature bit as dumpe2fs does, in its order', async (ctx) => {
    requireTools(ctx, 'mkfs.ext2', 'dumpe2fs');
    const base = await readFile(await mkfs('bits', 'mkfs.ext2', []));
    const path = dir.file('bits-flipped.img');
    let compared = 0;
    for (const [word, at] of [['compat', 0x5c], ['incompat', 0x60], ['ro_compat', 0x64]] as const) {
      for (let bit = 0; bit < 32; bit++) {
        const img = Buffer.from(base);
        img.writeUInt32LE((img.readUInt32LE(1024 + at) | (1 << bit)) >>> 0, 1024 + at);
        await writeFile(path, img);
        const mine = featureNames(img.readUInt32LE(1024 + 0x5c), img.readUInt32LE(1024 + 0x60), img.readUInt32LE(1024 + 0x64));
        // dumpe2fs refuses some incompat bits it does not know; it prints the rest (even with a bad checksum).
        const out = await run('dumpe2fs', ['-h', path]).catch((err: Error) => ({ stdout: err.message }));
        const line = /^Filesystem features:\s*(.*)$/m.exec(out.stdout);
        if (!line) continue;
        expect(mine, `${word} bit ${bit}`).toEqual(line[1]!.trim().split(/\s+/));
        compared++;
      }
    }
    expect(compared).toBeGreaterThanOrEqual(75);
  });

  it('prints the state as dumpe2fs does for every combination of the valid and error bits', async (ctx) => {
    requireTools(ctx, 'mkfs.ext2', 'dumpe2fs');
    const base = await readFile(await mkfs('state', 'mkfs.ext2', []));
    const path = dir.file('state-flipped.img');
    for (const state of [0, 1, 2, 3, 4, 5, 6, 7]) {
      const img = Buffer.from(base);
      img.writeUInt16LE(state, 1024 + 0x3a);
      await writeFile(path, img);
      const facts = extFacts(parseSuperblock(img.subarray(1024, 2048)));
      expect(facts.state).toBe((await dumpe2fsHeader(path)).get('Filesystem state'));
    }
  });
});

describe('type classification (libblkid rules)', () => {
  it('matches blkid -p when ext4-only features are switched on one at a time', async (ctx) => {
    requireTools(ctx, 'mkfs.ext2', 'mkfs.ext3', 'blkid');
    const ext2 = await readFile(await mkfs('cls2', 'mkfs.ext2', []));
    const ext3 = await readFile(await mkfs('cls3', 'mkfs.ext3', ['-I', '128']));
    const path = dir.file('cls.img');
    // huge_file, dir_nlink, extra_isize, extent, flex_bg, meta_bg, btree_dir, needs_recovery, uninit_bg
    const flips: [number, number][] = [[0x64, 0x8], [0x64, 0x20], [0x64, 0x40], [0x60, 0x40], [0x60, 0x200],
      [0x60, 0x10], [0x64, 0x4], [0x60, 0x4], [0x64, 0x10], [0x5c, 0x1]];
    for (const base of [ext2, ext3]) {
      for (const [at, mask] of flips) {
        const img = Buffer.from(base);
        img.writeUInt32LE((img.readUInt32LE(1024 + at) | mask) >>> 0, 1024 + at);
        await writeFile(path, img);
        const want = await blkidType(path);
        if (want === '') continue; // e.g. needs_recovery without a journal: blkid names nothing
        expect(extFacts(parseSuperblock(img.subarray(1024, 2048))).type, `0x${at.toString(16)} |= 0x${mask.toString(16)}`)
          .toBe(want);
      }
    }
  });
});

describe('bad superblocks give typed errors', () => {
  let ext4: Uint8Array;
  let ext2: Uint8Array;
  beforeAll(async () => {
    ext4 = (await readFile(await mkfs('bad4', 'mkfs.ext4', []))).subarray(1024, 2048);
    ext2 = (await readFile(await mkfs('bad2', 'mkfs.ext2', []))).subarray(1024, 2048);
  });

  function mutated(base: Uint8Array, edit: (b: Buffer) => void, fixChecksum = true): Buffer {
    const b = Buffer.from(base);
    edit(b);
    if (fixChecksum) b.writeUInt32LE(superblockChecksum(b), 0x3fc);
    return b;
  }

  function codeOf(fn: () => unknown): string {
    try {
      fn();
    } catch (err) {
      if (err instanceof ImageError) return `${err.code}@${err.offset}`;
      throw err;
    }
    return 'ok';
  }

  it('accepts the real superblocks', (ctx) => {
    requireTools(ctx, 'mkfs.ext4');
    expect(codeOf(() => parseSuperblock(ext4))).toBe('ok');
    expect(codeOf(() => parseSuperblock(ext2))).toBe('ok');
  });

  it('flags each kind of damage with its code and byte offset', (ctx) => {
    requireTools(ctx, 'mkfs.ext4');
    const cases: [string, Uint8Array, string][] = [
      ['short buffer', ext4.subarray(0, 1000), 'E_TRUNCATED@1024'],
      ['bad magic', mutated(ext4, (b) => b.writeUInt16LE(0xef54, 0x38)), 'E_BAD_MAGIC@1080'],
      ['block size log 7', mutated(ext4, (b) => b.writeUInt32LE(7, 0x18)), 'E_CORRUPT@1048'],
      ['block size log 2^31', mutated(ext4, (b) => b.writeUInt32LE(0x80000000, 0x18)), 'E_CORRUPT@1048'],
      ['zero blocks per group', mutated(ext2, (b) => b.writeUInt32LE(0, 0x20)), 'E_CORRUPT@1056'],
      ['zero inodes per group', mutated(ext2, (b) => b.writeUInt32LE(0, 0x28)), 'E_CORRUPT@1064'],
      ['inodes per group over a bitmap', mutated(ext2, (b) => b.writeUInt32LE(8193, 0x28)), 'E_CORRUPT@1064'],
      ['inode count off', mutated(ext2, (b) => b.writeUInt32LE(b.readUInt32LE(0) + 1, 0)), 'E_CORRUPT@1024'],
      ['free blocks > total', mutated(ext2, (b) => b.writeUInt32LE(b.readUInt32LE(4) + 1, 0x0c)), 'E_CORRUPT@1036'],
      ['free inodes > total', mutated(ext2, (b) => b.writeUInt32LE(b.readUInt32LE(0) + 1, 0x10)), 'E_CORRUPT@1040'],
      ['reserved > total', mutated(ext2, (b) => b.writeUInt32LE(b.readUInt32LE(4) + 1, 0x08)), 'E_CORRUPT@1032'],
      ['first data block past the end', mutated(ext2, (b) => b.writeUInt32LE(b.readUInt32LE(4), 0x14)), 'E_CORRUPT@1044'],
      ['inode size 100', mutated(ext2, (b) => b.writeUInt16LE(100, 0x58)), 'E_CORRUPT@1112'],
      ['inode size 384', mutated(ext2, (b) => b.writeUInt16LE(384, 0x58)), 'E_CORRUPT@1112'],
      ['revision 2', mutated(ext2, (b) => b.writeUInt32LE(2, 0x4c)), 'E_UNSUPPORTED@1100'],
      ['64bit desc size 32', mutated(ext4, (b) => b.writeUInt16LE(32, 0xfe)), 'E_CORRUPT@1278'],
      ['bad checksum', mutated(ext4, (b) => b.writeUInt32LE(b.readUInt32LE(0x10) - 1, 0x10), false), 'E_BAD_CHECKSUM@2044'],
      ['blocks_count_hi beyond 2^53', mutated(ext4, (b) => b.writeUInt32LE(0x00400000, 0x150)), 'E_TOO_LARGE@1360'],
    ];
    for (const [what, bytes, want] of cases) expect(codeOf(() => parseSuperblock(bytes)), what).toBe(want);
  });

  it('says E_TRUNCATED when the filesystem is larger than its device', async (ctx) => {
    requireTools(ctx, 'mkfs.ext4');
    const img = new Uint8Array(await readFile(dir.file('bad4.img')));
    const whole = new MemoryDevice(img, { writable: false });
    await expect(readSuperblock(new SliceDevice(whole, 0, img.length - 4096))).rejects.toMatchObject({ code: 'E_TRUNCATED' });
    await expect(readSuperblock(new SliceDevice(whole, 0, 2000))).rejects.toMatchObject({ code: 'E_TRUNCATED' });
    expect(probeExt(img.subarray(0, 2000))).toBe(false);
  });

  it('fuzz: thousands of mutated superblocks give an ImageError or sane facts, never anything else', (ctx) => {
    requireTools(ctx, 'mkfs.ext4');
    const rnd = prng(0xe2f5);
    const bases = [ext4, ext2];
    let accepted = 0;
    for (let i = 0; i < 6000; i++) {
      const b = Buffer.from(bases[i % bases.length]!);
      const edits = rnd.int(1, 4);
      for (let e = 0; e < edits; e++) {
        const r = rnd.next();
        // Most edits hit the first 0x180 bytes, where the counts and geometry live.
        const at = rnd.next() < 0.85 ? rnd.int(0, 0x17c) : rnd.int(0, 1020);
        if (r < 0.4) b[at] = rnd.int(0, 255);
        else if (r < 0.6) b.writeUInt32LE([0, 1, 0xffffffff, 0x80000000, 7, 64, 65536][rnd.int(0, 6)]!, at & ~3);
        else if (r < 0.8) b.writeUInt32LE(Math.floor(rnd.next() * 2 ** 32), at & ~3);
        else b[at] = b[at]! ^ (1 << rnd.int(0, 7));
      }
      if (rnd.next() < 0.7) b.writeUInt32LE(superblockChecksum(b), 0x3fc);
      const head = Buffer.concat([Buffer.alloc(1024), b]);
      expect(typeof probeExt(head)).toBe('boolean');
      try {
        const sb = parseSuperblock(b, { deviceSize: 64 * 1024 * 1024 });
        const facts = (() => {
          try {
            return extFacts(sb);
          } catch (err) {
            if (err instanceof ImageError && err.code === 'E_UNSUPPORTED') return undefined;
            throw err;
          }
        })();
        if (facts) {
          expect(facts.blocksFree).toBeLessThanOrEqual(facts.blocksTotal);
          expect(facts.inodesFree).toBeLessThanOrEqual(facts.inodesTotal);
          expect(facts.blocksTotal * facts.blockSize).toBeLessThanOrEqual(64 * 1024 * 1024);
          expect(facts.inodeSize).toBeLessThanOrEqual(facts.blockSize);
          expect(facts.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
          accepted++;
        }
      } catch (err) {
        if (!(err instanceof ImageError)) throw err;
      }
    }
    // Both outcomes must really occur, or the loop proves nothing.
    expect(accepted).toBeGreaterThan(200);
    expect(accepted).toBeLessThan(5800);
  });
});
