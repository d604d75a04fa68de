import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng, tmpDir, writeSparseImage, type TmpDir } from '@amitrans/testkit';
import { convert } from '../src/index.js';

// Every writer/reader pair: random extents -> A -> B -> raw equals the original.
const FORMATS: [string, Record<string, string>][] = [
  ['raw', {}],
  ['vhd', { subformat: 'dynamic', force_size: 'on' }],
  ['vhd', { subformat: 'fixed', force_size: 'on' }],
  ['vdi', {}],
  ['vmdk', { subformat: 'streamOptimized' }],
  ['vmdk', { subformat: 'monolithicSparse' }],
  ['qcow2', {}],
  ['qcow2', { compress: 'on' }],
];
const label = ([f, o]: [string, Record<string, string>]): string => [f, ...Object.values(o)].join('-');

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(async () => {
  await dir.remove();
});

describe('round trip across every writer/reader pair', () => {
  const rnd = prng(7);
  for (const a of FORMATS) {
    it(`${label(a)} -> every format -> raw`, async () => {
      // A size that is a whole number of sectors but not of MiB (VHD force_size keeps it exact).
      const size = (rnd.int(1, 3) * 1024 * 1024) + rnd.int(1, 2047) * 512;
      const src = dir.file(`src-${label(a)}.raw`);
      await writeSparseImage(src, size, rnd.int(1, 1e9));
      const want = await readFile(src);
      const first = dir.file(`a-${label(a)}.${a[0]}`);
      await convert(src, first, { format: a[0], options: a[1] });
      for (const b of FORMATS) {
        const second = dir.file(`b-${label(a)}-${label(b)}.${b[0]}`);
        const back = dir.file(`c-${label(a)}-${label(b)}.raw`);
        await convert(first, second, { format: b[0], options: b[1] });
        await convert(second, back, { format: 'raw' });
        const got = await readFile(back);
        expect(got.length, `${label(a)} -> ${label(b)} size`).toBe(want.length);
        expect(Buffer.compare(got, want), `${label(a)} -> ${label(b)} content`).toBe(0);
      }
    }, 120_000);
  }
});
