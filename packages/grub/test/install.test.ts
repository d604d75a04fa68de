import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debRoot, grubShell, requireTools, run, sfdiskImage, tmpDir, type TmpDir } from '@amitrans/testkit';
import { FileDevice, ImageError } from '@amitrans/block';
import { grubBootSectors, installGrub, patchStage2, type StageFiles } from '../src/index.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(async () => {
  await dir.remove();
});

async function stageFiles(root: string): Promise<StageFiles> {
  const d = `${root}/usr/lib/grub/x86_64-pc`;
  return { stage1: await readFile(`${d}/stage1`), stage1_5: await readFile(`${d}/e2fs_stage1_5`), stage2: await readFile(`${d}/stage2`) };
}

interface Layout {
  name: string;
  script: string;
  mkfs: string[];
  /** Partition index (1-based) holding /boot/grub, and its start sector. */
  part: number;
  start: number;
  sectors: number;
  prefix?: string;
  forceLba?: boolean;
}

const layouts: Layout[] = [
  { name: 'ext3 -I 128 at 2048', script: 'label: dos\nlabel-id: 0x12345678\nstart=2048, size=61440, type=83, bootable\n', mkfs: ['mkfs.ext3', '-I', '128'], part: 1, start: 2048, sectors: 61440 },
  { name: 'ext3 -I 128 at 63', script: 'label: dos\nlabel-id: 0x12345678\nstart=63, size=61440, type=83, bootable\n', mkfs: ['mkfs.ext3', '-I', '128'], part: 1, start: 63, sectors: 61440 },
  { name: 'ext2 at 20', script: 'label: dos\nstart=20, size=61440, type=83\n', mkfs: ['mkfs.ext2', '-I', '128'], part: 1, start: 20, sectors: 61440 },
  { name: 'ext4 default', script: 'label: dos\nlabel-id: 0xdeadbeef\nstart=2048, size=61440, type=83, bootable\n', mkfs: ['mkfs.ext4'], part: 1, start: 2048, sectors: 61440 },
  { name: 'second partition', script: 'label: dos\nstart=2048, size=8192, type=82\nstart=10240, size=61440, type=83, bootable\n', mkfs: ['mkfs.ext3'], part: 2, start: 10240, sectors: 61440 },
  { name: 'force-lba', script: 'label: dos\nstart=2048, size=61440, type=83, bootable\n', mkfs: ['mkfs.ext3', '-I', '128'], part: 1, start: 2048, sectors: 61440, forceLba: true },
  { name: '--prefix=/grub', script: 'label: dos\nstart=2048, size=61440, type=83, bootable\n', mkfs: ['mkfs.ext3', '-I', '128'], part: 1, start: 2048, sectors: 61440, prefix: '/grub' },
];

/** A disk with the stage files and a menu.lst in its filesystem, before any GRUB install. */
async function buildDisk(l: Layout, grubRoot: string): Promise<string> {
  const tree = dir.file(`${l.name.replace(/\W+/g, '-')}-tree`);
  const gdir = `${tree}${l.prefix ?? '/boot/grub'}`;
  await mkdir(gdir, { recursive: true });
  for (const f of ['stage1', 'stage2', 'e2fs_stage1_5']) await copyFile(`${grubRoot}/usr/lib/grub/x86_64-pc/${f}`, `${gdir}/${f}`);
  await writeFile(`${gdir}/menu.lst`, 'default 0\ntimeout 1\ntitle reboot\nreboot\n');
  const disk = dir.file(`${l.name.replace(/\W+/g, '-')}.img`);
  await sfdiskImage(disk, 40 * 1024 * 1024, l.script);
  await run(l.mkfs[0]!, ['-q', '-F', ...l.mkfs.slice(1), '-d', tree, '-E', `offset=${l.start * 512}`, disk, `${(l.sectors * 512) / 1024}`]);
  return disk;
}

describe('GRUB legacy install equals `grub> setup (hd0)` byte for byte', () => {
  for (const l of layouts) {
    it(l.name, async (ctx) => {
      requireTools(ctx, 'sfdisk', 'mkfs.ext3', 'cmp');
      const grubRoot = debRoot(ctx, 'grub-legacy');
      const disk = await buildDisk(l, grubRoot);
      const theirs = `${disk}.grub`;
      const ours = `${disk}.ours`;
      await copyFile(disk, theirs);
      await copyFile(disk, ours);
      const setup = `setup${l.forceLba ? ' --force-lba' : ''}${l.prefix ? ` --prefix=${l.prefix}` : ''} (hd0)`;
      const shell = grubShell(ctx);
      const out = await run(shell.cmd, [...shell.args, '--batch', '--device-map=/dev/null', '--no-floppy'], {
        input: `device (hd0) ${theirs}\nroot (hd0,${l.part - 1})\n${setup}\nquit\n`,
      });
      expect(out.stdout).toMatch(/sectors are embedded/);
      expect(out.stdout).not.toMatch(/Error/);

      const stages = await stageFiles(grubRoot);
      const dev = await FileDevice.open(ours, { writable: true });
      await installGrub(dev, stages, { slice: l.part - 1, ...(l.prefix ? { prefix: l.prefix } : {}), ...(l.forceLba ? { forceLba: true } : {}) });
      await dev.close();

      if (l.forceLba || l.prefix) {
        // install also patches stage2's second sector inside the filesystem; compare the
        // boot sectors (LBA 0..19) exactly, and stage2 through debugfs.
        const a = (await readFile(theirs)).subarray(0, 20 * 512);
        const b = (await readFile(ours)).subarray(0, 20 * 512);
        expect(Buffer.compare(a, b)).toBe(0);
        const dumped = dir.file(`${l.name.replace(/\W+/g, '-')}.stage2`);
        await run('debugfs', ['-R', `dump ${l.prefix ?? '/boot/grub'}/stage2 ${dumped}`, `${theirs}?offset=${l.start * 512}`]);
        const want = await readFile(dumped);
        expect(Buffer.compare(patchStage2(stages.stage2!, { ...(l.prefix ? { prefix: l.prefix } : {}), forceLba: l.forceLba ?? false }), want)).toBe(0);
      } else {
        // The whole images are identical.
        const r = await run('cmp', [theirs, ours]).then(() => 0, () => 1);
        expect(r).toBe(0);
      }
    });
  }
});

describe('GRUB install refuses what cannot boot', () => {
  const sector = (fill: (b: Buffer) => void): Uint8Array => {
    const b = Buffer.alloc(512);
    b[510] = 0x55;
    b[511] = 0xaa;
    fill(b);
    return b;
  };
  const fake: StageFiles = (() => {
    const stage1 = Buffer.alloc(512);
    stage1[0x3e] = 3;
    stage1[0x3f] = 2;
    stage1[510] = 0x55;
    stage1[511] = 0xaa;
    const stage1_5 = Buffer.alloc(9460);
    stage1_5[512 + 6] = 3;
    stage1_5[512 + 7] = 2;
    stage1_5[512 + 0x10] = 2;
    stage1_5.write('0.97\0', 512 + 0x12, 'latin1');
    return { stage1, stage1_5 };
  })();
  const code = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      return err instanceof ImageError ? err.code : `not an ImageError: ${String(err)}`;
    }
    return 'no error';
  };
  it('a disk without 55 AA', () => {
    expect(code(() => grubBootSectors(new Uint8Array(512), fake, { slice: 0 }))).toBe('E_BAD_MAGIC');
  });
  it('a partition inside the embedding area', () => {
    const mbr = sector((b) => {
      b[0x1be + 4] = 0x83;
      b.writeUInt32LE(19, 0x1be + 8);
      b.writeUInt32LE(1000, 0x1be + 12);
    });
    expect(code(() => grubBootSectors(mbr, fake, { slice: 0 }))).toBe('E_OUT_OF_RANGE');
    const ok = sector((b) => {
      b[0x1be + 4] = 0x83;
      b.writeUInt32LE(20, 0x1be + 8);
      b.writeUInt32LE(1000, 0x1be + 12);
    });
    expect(code(() => grubBootSectors(ok, fake, { slice: 0 }))).toBe('no error');
  });
  it('stage files of another GRUB version, or swapped', () => {
    const old = { ...fake, stage1: Buffer.from(fake.stage1) };
    old.stage1[0x3f] = 1;
    expect(code(() => grubBootSectors(sector(() => {}), old, { slice: 0 }))).toBe('E_UNSUPPORTED');
    expect(code(() => grubBootSectors(sector(() => {}), { stage1: fake.stage1, stage1_5: fake.stage1_5, stage2: fake.stage1_5 }, { slice: 0 }))).toBe('E_CORRUPT');
    expect(code(() => grubBootSectors(sector(() => {}), { ...fake, stage1_5: Buffer.alloc(30000) }, { slice: 0 }))).toBe('E_CORRUPT');
  });
  it('a prefix too long for the config field', () => {
    expect(code(() => grubBootSectors(sector(() => {}), fake, { slice: 0, prefix: `/${'x'.repeat(60)}` }))).toBe('E_TOO_LARGE');
  });
});
