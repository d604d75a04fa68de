import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageError, MemoryDevice } from '@amitrans/block';
import { prng, requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import { ExtFs } from '../src/index.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir('amitrans-extfs-fuzz-');
});
afterAll(async () => {
  await dir.remove();
});

const ROUNDS = 300;

describe('ExtFs on damaged metadata', () => {
  for (const tool of ['mkfs.ext2', 'mkfs.ext4']) {
  it(`fuzz (${tool}): mutated group descriptors, bitmaps, inodes and directories give ImageError or data, never a crash or hang`, async (ctx) => {
    requireTools(ctx, tool);
    const root = dir.file(`root-${tool}`);
    await mkdir(`${root}/etc/sub`, { recursive: true });
    await writeFile(`${root}/etc/fstab`, 'x'.repeat(3000));
    await writeFile(`${root}/etc/sub/a`, 'a\n');
    const path = dir.file(`fuzz-${tool}.img`);
    await run('truncate', ['-s', '2M', path]);
    await run(tool, ['-q', '-F', '-d', root, path]);
    const base = new Uint8Array(await readFile(path));
    // A 2 MiB filesystem keeps its metadata (and these few files) in its first 160 KiB.
    const hot = 160 * 1024;
    const rnd = prng(tool === 'mkfs.ext2' ? 0x3e22 : 0x3e24);
    let opened = 0;
    let failed = 0;
    let opFailures = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const img = base.slice();
      const edits = rnd.int(1, 32);
      for (let e = 0; e < edits; e++) {
        // Leave the superblock alone (its own fuzz is in superblock.test.ts) so libext2fs gets to run.
        const at = rnd.int(2048, hot - 1);
        img[at] = rnd.next() < 0.5 ? rnd.int(0, 255) : img[at]! ^ (1 << rnd.int(0, 7));
      }
      const dev = new MemoryDevice(img, { writable: false });
      let fs: ExtFs | undefined;
      try {
        fs = await ExtFs.open(dev, { writable: true });
        opened++;
        const outcomes = await Promise.all([
          fs.readdir('/etc'),
          fs.readdir('/etc/sub'),
          fs.readFile('/etc/fstab'),
          fs.writeFile('/etc/sub/b', 'b\n'),
          fs.freeRanges(),
        ].map((p) => p.then(() => true, (err: unknown) => swallowImageError(err) ?? false)));
        opFailures += outcomes.filter((ok) => !ok).length;
        await fs.close().catch(swallowImageError);
      } catch (err) {
        swallowImageError(err);
        failed++;
      }
      expect(Buffer.compare(Buffer.from(dev.bytes), Buffer.from(img))).toBe(0); // the source is never written
    }
    console.log(`${tool}: ${opened} opened (${opFailures} operations failed), ${failed} refused`);
    expect(opened).toBeGreaterThan(0);
    expect(opened + failed).toBe(ROUNDS);
  });
  }
});

function swallowImageError(err: unknown): undefined {
  if (err instanceof ImageError) return undefined;
  throw err;
}
