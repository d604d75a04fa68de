import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryDevice, MemorySink, collectExtents, type BlockDevice, type FormatDriver } from '@amitrans/block';
import { tmpDir, writeSparseImage, type SparseLayout, type TmpDir, GuardedSource, readAll } from '@amitrans/testkit';
import { qcow2Driver } from '@amitrans/qcow2';
import { vmdkDriver } from '../src/index.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(() => dir.remove());

async function through(driver: FormatDriver, disk: BlockDevice, options: Record<string, string>): Promise<BlockDevice> {
  const sink = new MemorySink();
  await driver.write!(disk, sink, { options });
  await sink.commit();
  return driver.open!(new MemoryDevice(sink.bytes.slice(), { writable: false }));
}

describe('round trips between qcow2 and VMDK', () => {
  const cases: [string, FormatDriver, Record<string, string>, FormatDriver, Record<string, string>][] = [
    ['qcow2 -> vmdk streamOptimized', qcow2Driver, {}, vmdkDriver, { subformat: 'streamOptimized' }],
    ['compressed qcow2 -> vmdk monolithicSparse', qcow2Driver, { compress: 'on' }, vmdkDriver, {}],
    ['vmdk streamOptimized -> qcow2', vmdkDriver, { subformat: 'streamOptimized' }, qcow2Driver, {}],
    ['vmdk monolithicSparse -> compressed qcow2', vmdkDriver, {}, qcow2Driver, { compress: 'on' }],
  ];
  let seed = 40;
  for (const [name, first, o1, second, o2] of cases) {
    const mySeed = seed++;
    it(`${name} -> raw equals the original`, async () => {
      const size = 6 * 1024 * 1024 + (mySeed % 7) * 512 + 512;
      const path = dir.file(`src-${mySeed}.raw`);
      const layout: SparseLayout = await writeSparseImage(path, size, mySeed);
      const src = await GuardedSource.open(path, layout);
      const want = new Uint8Array(size);
      for (const r of layout.runs) if (r.kind === 'data') await src.read(want.subarray(r.offset, r.offset + r.length), r.offset);
      const a = await through(first, src, o1);
      const b = await through(second, a, o2);
      expect(b.size).toBe(size);
      expect(Buffer.compare(await readAll(b), want)).toBe(0);
      // Holes stay holes all the way through.
      const holes = (await collectExtents(b)).filter((e) => e.kind !== 'data').reduce((n, e) => n + e.length, 0);
      expect(holes).toBeGreaterThan(0);
      await src.close();
    });
  }
});
