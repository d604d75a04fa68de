import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { MemoryDevice, MemorySink, StreamSink, collectExtents, extentTotals, type BlockDevice } from '@amitrans/block';
import { openVdi, planVdiLayout, vdiDriver, writeVdi } from '../src/index.js';
import { StrictSource, mappedDisk } from '@amitrans/testkit';

const MIB = 1024 * 1024;
const REPRO = { uuid: '00112233-4455-6677-8899-aabbccddeeff' };

async function toStream(disk: BlockDevice, options: Record<string, string>): Promise<Uint8Array> {
  const pass = new PassThrough();
  const chunks: Buffer[] = [];
  pass.on('data', (c: Buffer) => chunks.push(c));
  const sink = new StreamSink(pass);
  await writeVdi(disk, sink, { options });
  await sink.commit();
  return new Uint8Array(Buffer.concat(chunks));
}

async function toMemory(disk: BlockDevice, options: Record<string, string>): Promise<Uint8Array> {
  const sink = new MemorySink();
  await writeVdi(disk, sink, { options });
  await sink.commit();
  return sink.bytes.slice();
}

describe('VDI writer', () => {
  it('lays out like VirtualBox: map at 1 MiB, data 1 MiB-aligned', () => {
    expect(planVdiLayout(10 * MIB + 1)).toEqual({ diskSize: 10 * MIB + 512, blocks: 11, offBlocks: MIB, offData: 2 * MIB });
    expect(planVdiLayout(300 * 1024 * MIB).offData).toBe(3 * MIB); // 307200 entries = 1.17 MiB of map
  });

  for (const sub of ['dynamic', 'static']) {
    it(`${sub}: never reads zero or unallocated source ranges, reads each data byte once`, async () => {
      const disk = mappedDisk(sub === 'static' ? 1 : 2);
      const strict = await StrictSource.over(disk);
      const bytes = await toMemory(strict, { subformat: sub, ...REPRO });
      expect(strict.dataRead).toBe((await extentTotals(disk)).data);
      const dev = await openVdi(new MemoryDevice(bytes, { writable: false }));
      const back = new Uint8Array(dev.size);
      await dev.read(back, 0);
      expect(Buffer.compare(back.subarray(0, disk.size), disk.bytes)).toBe(0);
    });

    it(`${sub}: a non-seekable sink gets the same bytes as a seekable one`, async () => {
      const disk = await StrictSource.over(mappedDisk(sub === 'static' ? 3 : 4));
      const options = { subformat: sub, ...REPRO };
      expect(vdiDriver.canStream(options)).toBe(true);
      const streamed = await toStream(disk, options);
      const seeked = await toMemory(disk, options);
      expect(streamed.length).toBe(seeked.length);
      expect(Buffer.compare(streamed, seeked)).toBe(0);
    });
  }

  it('dynamic: zero blocks are never stored on a seekable sink; a stream stores what the map promised', async () => {
    const bytes = new Uint8Array(4 * MIB);
    bytes[MIB + 5] = 1; // only block 1 holds data; MemoryDevice maps everything as data
    const disk = new MemoryDevice(bytes, { writable: false });
    const seeked = await toMemory(disk, REPRO);
    expect(seeked.length).toBe(2 * MIB + MIB);
    const map = await collectExtents(await openVdi(new MemoryDevice(seeked, { writable: false })));
    expect(map.map((e) => e.kind)).toEqual(['unallocated', 'data', 'unallocated']);
    const streamed = await toStream(disk, REPRO);
    const dev = await openVdi(new MemoryDevice(streamed, { writable: false }));
    expect(dev.header.blocksAllocated).toBe(4);
    const back = new Uint8Array(dev.size);
    await dev.read(back, 0);
    expect(Buffer.compare(back, bytes)).toBe(0);
  });

  it('rejects unknown or contradictory options', async () => {
    const bad: Record<string, string>[] = [{ bogus: '1' }, { subformat: 'split' }, { static: 'off', subformat: 'fixed' }, { uuid: 'x' }, { uuid: REPRO.uuid, modify_uuid: REPRO.uuid }];
    for (const options of bad) {
      await expect(writeVdi(new MemoryDevice(MIB), new MemorySink(), { options })).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    }
  });

  it('stops when the signal aborts', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(writeVdi(mappedDisk(5), new MemorySink(), { signal: controller.signal })).rejects.toThrow();
  });
});
