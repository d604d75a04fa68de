import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { ImageError, MemoryDevice, MemorySink, StreamSink, collectExtents, extentTotals, type BlockDevice } from '@amitrans/block';
import { geometryCovering, geometrySectors, openVhd, planVhdSize, vhdDriver, writeVhd } from '../src/index.js';
import { mappedDisk, readAll, StrictSource } from '@amitrans/testkit';

const MIB = 1024 * 1024;
const REPRO = { uuid: '00112233-4455-6677-8899-aabbccddeeff', timestamp: '1700000000' };

async function toStream(disk: BlockDevice, options: Record<string, string>): Promise<Uint8Array> {
  const pass = new PassThrough();
  const chunks: Buffer[] = [];
  pass.on('data', (c: Buffer) => chunks.push(c));
  const sink = new StreamSink(pass);
  await writeVhd(disk, sink, { options });
  await sink.commit();
  return new Uint8Array(Buffer.concat(chunks));
}

async function toMemory(disk: BlockDevice, options: Record<string, string>): Promise<Uint8Array> {
  const sink = new MemorySink();
  await writeVhd(disk, sink, { options });
  await sink.commit();
  return sink.bytes.slice();
}

describe('VHD writer', () => {
  it('mirrors qemu-img default sizing: 1000 MiB -> 2032/16/63 = 1,048,707,072 bytes', () => {
    const g = geometryCovering((1000 * MIB) / 512);
    expect(g).toEqual({ cylinders: 2032, heads: 16, sectorsPerTrack: 63 });
    expect(geometrySectors(g) * 512).toBe(1048707072);
    expect(planVhdSize(1000 * MIB, { forceSize: false, azure: false }).size).toBe(1048707072);
    expect(planVhdSize(1000 * MIB, { forceSize: true, azure: false }).size).toBe(1000 * MIB);
    expect(planVhdSize(1000 * MIB + 1, { forceSize: false, azure: true }).size).toBe(1001 * MIB);
    // Beyond the largest geometry, the exact size with the maximum geometry.
    const big = planVhdSize(200 * 1024 * MIB, { forceSize: false, azure: false });
    expect(big.size).toBe(200 * 1024 * MIB);
    expect(big.geometry).toEqual({ cylinders: 65535, heads: 16, sectorsPerTrack: 255 });
    expect(() => planVhdSize(2041 * 1024 * MIB, { forceSize: true, azure: false })).toThrow(ImageError);
  });

  for (const sub of ['fixed', 'dynamic']) {
    it(`${sub}: never reads zero or unallocated source ranges, reads each data byte once`, async () => {
      const disk = mappedDisk(sub === 'fixed' ? 1 : 2);
      const strict = await StrictSource.over(disk);
      const bytes = await toMemory(strict, { subformat: sub, ...REPRO });
      expect(strict.dataRead).toBe((await extentTotals(disk)).data);
      const dev = await openVhd(new MemoryDevice(bytes, { writable: false }));
      const back = await readAll(dev);
      expect(Buffer.compare(back.subarray(0, disk.size), disk.bytes)).toBe(0);
      expect(back.subarray(disk.size).every((b) => b === 0)).toBe(true);
    });

    it(`${sub}: a non-seekable sink gets the same bytes as a seekable one`, async () => {
      const disk = await StrictSource.over(mappedDisk(sub === 'fixed' ? 3 : 4));
      const options = { subformat: sub, ...REPRO };
      expect(vhdDriver.canStream(options)).toBe(true);
      const streamed = await toStream(disk, options);
      const seeked = await toMemory(disk, options);
      expect(streamed.length).toBe(seeked.length);
      expect(Buffer.compare(streamed, seeked)).toBe(0);
    });
  }

  it('dynamic to a stream: blocks the map called data but hold zeros are stored with an empty bitmap', async () => {
    const bytes = new Uint8Array(6 * MIB);
    bytes[3 * MIB] = 9; // only block 1 holds data; MemoryDevice maps everything as data
    const disk = new MemoryDevice(bytes, { writable: false });
    const streamed = await toStream(disk, { subformat: 'dynamic', force_size: 'on', ...REPRO });
    const dev = await openVhd(new MemoryDevice(streamed, { writable: false }));
    expect(Buffer.compare(await readAll(dev), bytes)).toBe(0);
    const map = await collectExtents(dev);
    expect(map).toEqual([
      { offset: 0, length: 2 * MIB, kind: 'unallocated' },
      { offset: 2 * MIB, length: 2 * MIB, kind: 'data' },
      { offset: 4 * MIB, length: 2 * MIB, kind: 'unallocated' },
    ]);
    // The seekable path does not store the zero blocks at all.
    const seeked = await toMemory(disk, { subformat: 'dynamic', force_size: 'on', ...REPRO });
    expect(seeked.length).toBe(512 + 1024 + 512 + (512 + 2 * MIB) + 512);
  });

  it('rejects unknown or contradictory options with a clear error', async () => {
    const disk = new MemoryDevice(MIB);
    const bad: Record<string, string>[] = [{ bogus: '1' }, { subformat: 'sparse' }, { azure: 'on', subformat: 'dynamic' }, { uuid: 'nope' }, { force_size: 'maybe' }, { timestamp: '1990-01-01' }];
    for (const options of bad) {
      await expect(writeVhd(disk, new MemorySink(), { options })).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    }
  });

  it('stops when the signal aborts', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(writeVhd(mappedDisk(5), new MemorySink(), { signal: controller.signal })).rejects.toThrow();
  });

  it('reports progress up to the virtual size', async () => {
    const seen: number[] = [];
    const result = await writeVhd(mappedDisk(6), new MemorySink(), { options: { subformat: 'dynamic' }, progress: (done) => seen.push(done) });
    expect(seen.at(-1)).toBe(result.virtualSize);
  });
});
