import { describe, expect, it } from 'vitest';
import { MemoryDevice, MemorySink, collectExtents, type BlockDevice, type FormatDriver } from '@amitrans/block';
import { vhdDriver } from '@amitrans/vhd';
import { vdiDriver } from '../src/index.js';
import { StrictSource, mappedDisk } from '@amitrans/testkit';

async function through(driver: FormatDriver, disk: BlockDevice, options: Record<string, string>): Promise<BlockDevice> {
  const sink = new MemorySink();
  const write = driver.write;
  const open = driver.open;
  if (!write || !open) throw new Error(`${driver.name} cannot round-trip`);
  // Each hop reads its source through a strict wrapper: holes are never read.
  await write(await StrictSource.over(disk), sink, { options });
  await sink.commit();
  return open(new MemoryDevice(sink.bytes.slice(), { writable: false }));
}

async function bytesOf(dev: BlockDevice, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await dev.read(out, 0);
  return out;
}

const chains: [string, [FormatDriver, Record<string, string>][]][] = [
  ['VHD dynamic -> VDI dynamic', [[vhdDriver, { subformat: 'dynamic' }], [vdiDriver, {}]]],
  ['VHD fixed -> VDI static', [[vhdDriver, { subformat: 'fixed', force_size: 'on' }], [vdiDriver, { subformat: 'static' }]]],
  ['VDI dynamic -> VHD dynamic', [[vdiDriver, {}], [vhdDriver, { subformat: 'dynamic', force_size: 'on' }]]],
  ['VDI static -> VHD fixed (azure)', [[vdiDriver, { static: 'on' }], [vhdDriver, { azure: 'on' }]]],
  ['VHD -> VDI -> VHD -> VDI', [[vhdDriver, {}], [vdiDriver, {}], [vhdDriver, { subformat: 'fixed' }], [vdiDriver, {}]]],
];

describe('round trips within VHD and VDI', () => {
  chains.forEach(([name, hops], n) => {
    it(`${name}: random extents come back byte-identical`, async () => {
      const source = mappedDisk(100 + n);
      let dev: BlockDevice = source;
      for (const [driver, options] of hops) dev = await through(driver, dev, options);
      expect(dev.size).toBeGreaterThanOrEqual(source.size);
      const back = await bytesOf(dev, dev.size);
      expect(Buffer.compare(back.subarray(0, source.size), source.bytes)).toBe(0);
      expect(back.subarray(source.size).every((b) => b === 0)).toBe(true);
      // Whatever holds data in the source is 'data' in the result.
      const map = await collectExtents(dev);
      for (const e of source.map) {
        if (e.kind !== 'data' || source.bytes.subarray(e.offset, e.offset + e.length).every((b) => b === 0)) continue;
        const hit = map.filter((m) => m.offset < e.offset + e.length && e.offset < m.offset + m.length);
        expect(hit.every((m) => m.kind === 'data')).toBe(true);
      }
    });
  });
});
