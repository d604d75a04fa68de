import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng, sha256File, tmpDir, writeSparseImage, type TmpDir } from '@amitrans/testkit';
import { CowOverlay, FileDevice, MemoryDevice, ZeroDevice, collectExtents, readAt } from '../src/index.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(async () => {
  await dir.remove();
});

describe('CowOverlay', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`random writes never touch the base and read back merged (seed ${seed})`, async () => {
      const rnd = prng(seed);
      const size = rnd.int(1, 4 * 1024 * 1024 + 4096);
      const path = dir.file(`cow-${seed}.img`);
      await writeSparseImage(path, size, seed * 7);
      const before = await sha256File(path);
      const model = new Uint8Array(await readFile(path));
      const base = await FileDevice.open(path);
      const chunkSize = [512, 4096, 65536, 1 << 20][seed % 4]!;
      const cow = new CowOverlay(base, { chunkSize });
      for (let i = 0; i < 200; i++) {
        const at = rnd.int(0, size - 1);
        const len = rnd.int(1, Math.min(size - at, rnd.next() < 0.2 ? 300_000 : 5000));
        const bytes = rnd.bytes(len);
        await cow.write(bytes, at);
        model.set(bytes, at);
        if (i % 20 === 0) {
          const p = rnd.int(0, size - 1);
          const n = rnd.int(0, Math.min(size - p, 200_000));
          expect(Buffer.from(await readAt(cow, p, n)).equals(Buffer.from(model.subarray(p, p + n)))).toBe(true);
        }
      }
      // Whole-device read equals the model, in odd-sized pieces.
      for (let p = 0; p < size; ) {
        const n = Math.min(size - p, rnd.int(1, 700_000));
        const got = await readAt(cow, p, n);
        expect(Buffer.compare(got, model.subarray(p, p + n))).toBe(0);
        p += n;
      }
      // Every written chunk shows as data in the map; the map covers the device exactly.
      const ext = await collectExtents(cow);
      expect(ext[0]!.offset).toBe(0);
      expect(ext.reduce((s, e) => s + e.length, 0)).toBe(size);
      for (const r of cow.dirtyRanges()) {
        const covering = ext.find((e) => e.offset <= r.offset && e.offset + e.length >= r.offset + r.length);
        expect(covering?.kind).toBe('data');
      }
      await cow.close();
      await base.close();
      expect(await sha256File(path)).toBe(before);
    });
  }

  it('keeps the base map where nothing was written', async () => {
    const cow = new CowOverlay(new ZeroDevice(1 << 20), { chunkSize: 4096 });
    await cow.write(new Uint8Array([1]), 5000);
    await cow.write(new Uint8Array(8192).fill(2), 8192 * 10);
    expect(await collectExtents(cow)).toEqual([
      { offset: 0, length: 4096, kind: 'unallocated' },
      { offset: 4096, length: 4096, kind: 'data' },
      { offset: 8192, length: 8192 * 9, kind: 'unallocated' },
      { offset: 8192 * 10, length: 8192, kind: 'data' },
      { offset: 8192 * 11, length: (1 << 20) - 8192 * 11, kind: 'unallocated' },
    ]);
    expect(cow.dirtyBytes).toBe(4096 * 3);
  });

  it('handles a last chunk shorter than the chunk size', async () => {
    const base = new MemoryDevice(new Uint8Array(1000).fill(7), { writable: false });
    const cow = new CowOverlay(base, { chunkSize: 512 });
    await cow.write(new Uint8Array([1, 2]), 998);
    expect(await readAt(cow, 996, 4)).toEqual(new Uint8Array([7, 7, 1, 2]));
    expect(base.bytes[999]).toBe(7);
  });
});

describe('CachedDevice', () => {
  it('stays coherent with its own writes under random reads and writes (small, large, unaligned)', async () => {
    const { CachedDevice } = await import('../src/index.js');
    const rnd = prng(99);
    const size = 3 * 1024 * 1024 + 777;
    const base = new MemoryDevice(rnd.bytes(size));
    const model = new Uint8Array(base.bytes);
    const dev = new CachedDevice(base, { chunkSize: 64 * 1024, maxBytes: 256 * 1024 });
    for (let i = 0; i < 2000; i++) {
      const at = rnd.int(0, size - 1);
      const len = rnd.int(1, Math.min(size - at, rnd.next() < 0.1 ? 600_000 : 9000));
      if (rnd.next() < 0.4) {
        const b = rnd.bytes(len);
        await dev.write(b, at);
        model.set(b, at);
      } else {
        expect(Buffer.compare(await readAt(dev, at, len), model.subarray(at, at + len))).toBe(0);
      }
    }
    expect(Buffer.compare(base.bytes, model)).toBe(0);
    expect(dev.hits).toBeGreaterThan(0);
  });
});
