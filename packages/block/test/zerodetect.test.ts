import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir, writeSparseImage, type TmpDir } from '@amitrans/testkit';
import { FileDevice, MemoryDevice, ZeroDetectDevice, collectExtents, isZero } from '../src/index.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(async () => {
  await dir.remove();
});

describe('ZeroDetectDevice', () => {
  it('splits data into 4 KiB-aligned data and zero runs', async () => {
    const bytes = new Uint8Array(5 * 4096 + 100);
    bytes[4096 + 5] = 1; // block 1 is data
    bytes[4 * 4096] = 1; // block 4 is data
    bytes[5 * 4096 + 99] = 1; // the short tail is data
    const dev = new ZeroDetectDevice(new MemoryDevice(bytes), { readSize: 8192 });
    expect(await collectExtents(dev)).toEqual([
      { offset: 0, length: 4096, kind: 'zero' },
      { offset: 4096, length: 4096, kind: 'data' },
      { offset: 8192, length: 8192, kind: 'zero' },
      { offset: 4 * 4096, length: 4096 + 100, kind: 'data' },
    ]);
  });

  for (const seed of [11, 12, 13]) {
    it(`agrees with the content of a random sparse file (seed ${seed})`, async () => {
      const path = dir.file(`z${seed}.img`);
      const size = 3 * 1024 * 1024 + 512 * seed;
      await writeSparseImage(path, size, seed);
      const file = await FileDevice.open(path);
      const dev = new ZeroDetectDevice(file);
      const ext = await collectExtents(dev);
      expect(ext.reduce((s, e) => s + e.length, 0)).toBe(size);
      for (const e of ext) {
        const buf = new Uint8Array(e.length);
        await file.read(buf, e.offset);
        if (e.kind === 'zero') expect(isZero(buf)).toBe(true);
        else {
          // every 4 KiB block of a data run holds a non-zero byte
          for (let p = e.offset; p < e.offset + e.length; ) {
            const q = Math.min(e.offset + e.length, (Math.floor(p / 4096) + 1) * 4096);
            expect(isZero(buf.subarray(p - e.offset, q - e.offset))).toBe(false);
            p = q;
          }
        }
      }
      await file.close();
    });
  }
});
