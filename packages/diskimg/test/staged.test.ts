import { readdir, readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng, readAll, requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import {
  ConcatDevice,
  CowOverlay,
  FileDevice,
  MaskedDevice,
  MemoryDevice,
  ZeroDevice,
  mergeRanges,
  shiftRanges,
  xorRanges,
  type BlockDevice,
  type Range,
} from '@amitrans/block';
import { prepareOutput, stageDisk } from '../src/index.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(() => dir.remove());

const BLOCK = 4096;
const STALE = Buffer.from('AMITRANS-STAGED-STALE');

/** Random whole blocks of `blocks`, as merged byte ranges. */
function someBlocks(r: ReturnType<typeof prng>, blocks: number, share: number): Range[] {
  const out: Range[] = [];
  for (let b = 0; b < blocks; b++) if (r.next() < share) out.push({ offset: b * BLOCK, length: BLOCK });
  return mergeRanges(out);
}

function inRanges(ranges: readonly Range[], at: number): boolean {
  return ranges.some((x) => at >= x.offset && at < x.offset + x.length);
}

/**
 * A translate in miniature. The input file is a filesystem of random blocks (some all
 * zeros); the base disk is [zeros][the file, free blocks masked][zeros]. The final disk has
 * boot sectors in the head, edits through an overlay (new data, zeros over data, writes to
 * blocks that were free), blocks freed (each holds a stale marker that must not survive)
 * and blocks newly used. `changed` is what translate passes.
 */
async function scenario(seed: number): Promise<{ base: BlockDevice; final: BlockDevice; changed: Range[]; input: FileDevice }> {
  const r = prng(seed);
  const blocks = r.int(40, 160);
  const fsSize = blocks * BLOCK;
  const bytes = r.bytes(fsSize);
  for (let b = 0; b < blocks; b++) if (r.next() < 0.15) bytes.fill(0, b * BLOCK, (b + 1) * BLOCK);
  const freeBefore = someBlocks(r, blocks, 0.3);
  // Blocks freed by the edits: used before, and marked so a leak shows.
  const freed = someBlocks(r, blocks, 0.15).filter((x) => !freeBefore.some((f) => f.offset < x.offset + x.length && x.offset < f.offset + f.length));
  for (const f of freed) for (let at = f.offset; at + STALE.length <= f.offset + f.length; at += 512) bytes.set(STALE, at);
  const path = dir.file(`input-${seed}.raw`);
  await writeFile(path, bytes);
  const input = await FileDevice.open(path);

  const overlay = new CowOverlay(input, { chunkSize: seed % 2 ? BLOCK : 64 * 1024 });
  for (let i = 0; i < r.int(1, 8); i++) {
    const at = r.int(0, fsSize - 1);
    const length = r.int(1, Math.min(3 * BLOCK, fsSize - at));
    await overlay.write(i % 3 === 0 ? new Uint8Array(length) : r.bytes(length), at);
  }
  // Newly used blocks: some were free (their bytes in the file now show), some freed ones stay freed.
  const newlyUsed = freeBefore.filter(() => r.next() < 0.3);
  const freeAfter = mergeRanges([...xorRanges(freeBefore, newlyUsed), ...freed]);
  const headLen = [0, 512 * 63, 1024 * 1024][seed % 3]!;
  const tail = (seed % 4) * 3000;
  const compose = (fs: BlockDevice, head?: BlockDevice): BlockDevice =>
    new ConcatDevice([...(headLen ? [head ?? new ZeroDevice(headLen)] : []), fs, ...(tail ? [new ZeroDevice(tail)] : [])]);
  const base = compose(new MaskedDevice(input, freeBefore));
  const head = new MemoryDevice(headLen);
  head.bytes.set(r.bytes(Math.min(headLen, 9000)));
  const final = compose(new MaskedDevice(overlay, freeAfter), head);
  const changed = mergeRanges([
    ...(headLen ? [{ offset: 0, length: headLen }] : []),
    ...shiftRanges([...overlay.dirtyRanges(), ...xorRanges(freeBefore, freeAfter)], headLen, final.size),
  ]);
  // Sanity of the model: the freed blocks hold markers the base had as data.
  expect(freed.length).toBeGreaterThan(0);
  for (const f of freed) expect(inRanges(freeAfter, f.offset)).toBe(true);
  return { base, final, changed, input };
}

describe('range sets', () => {
  it('mergeRanges, xorRanges and shiftRanges agree with a byte model (200 seeds)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = prng(seed);
      const size = r.int(1, 300);
      const pick = (): Range[] => Array.from({ length: r.int(0, 6) }, () => {
        const offset = r.int(0, size - 1);
        return { offset, length: r.int(0, size - offset) };
      });
      const a = pick();
      const b = pick();
      const bits = (set: readonly Range[]): boolean[] => {
        const m = new Array<boolean>(size).fill(false);
        for (const x of set) for (let i = x.offset; i < x.offset + x.length; i++) m[i] = true;
        return m;
      };
      const ma = bits(a);
      const mb = bits(b);
      const merged = mergeRanges(a);
      expect(bits(merged)).toEqual(ma);
      for (let i = 1; i < merged.length; i++) expect(merged[i]!.offset).toBeGreaterThan(merged[i - 1]!.offset + merged[i - 1]!.length);
      expect(merged.every((x) => x.length > 0)).toBe(true);
      const x = xorRanges(a, b);
      expect(bits(x)).toEqual(ma.map((v, i) => v !== mb[i]));
      expect(xorRanges(x, [])).toEqual(x);
      const by = r.int(-20, 20);
      const shifted = shiftRanges(merged, by, size);
      expect(bits(shifted)).toEqual(Array.from({ length: size }, (_, i) => i - by >= 0 && i - by < size && ma[i - by]!));
    }
  });
});

describe('staged writes: the base copied early, the changes written at the end', () => {
  for (const format of ['raw', 'qcow2']) {
    it(`${format}: the image reads as the final disk (qemu-img compare, check), and no freed block's stale bytes stay in the file (10 seeds)`, async (ctx) => {
      requireTools(ctx, 'qemu-img');
      for (let seed = 1; seed <= 10; seed++) {
        const { base, final, changed, input } = await scenario(seed * 31 + format.length);
        const want = dir.file(`want-${format}-${seed}.raw`);
        await writeFile(want, await readAll(final));
        const out = dir.file(`staged-${seed}.${format}`);
        const options: Record<string, string> = format === 'qcow2' && seed % 2 ? { cluster_size: '4096' } : {};
        const staged = await stageDisk(base, prepareOutput(out, format, options));
        expect(staged).toBeDefined();
        const result = await staged!.finish(final, changed);
        expect(result.bytesRead).toBeGreaterThan(0);
        await run('qemu-img', ['compare', '-f', 'raw', '-F', format, want, out]);
        if (format === 'qcow2') {
          const check = JSON.parse((await run('qemu-img', ['check', '--output=json', out])).stdout) as { 'check-errors': number; leaks?: number; corruptions?: number };
          expect(check['check-errors']).toBe(0);
          expect(check.leaks ?? 0).toBe(0);
          expect(check.corruptions ?? 0).toBe(0);
        }
        expect((await readFile(out)).includes(STALE)).toBe(false);
        await input.close();
      }
    });
  }

  it('abort stops the copy and leaves no file behind', async () => {
    const { base, input } = await scenario(5);
    const sub = dir.file('aborted');
    await import('node:fs/promises').then((m) => m.mkdir(sub));
    const staged = await stageDisk(base, prepareOutput(`${sub}/out.qcow2`, 'qcow2'));
    expect(staged).toBeDefined();
    await staged!.abort();
    expect(await readdir(sub)).toEqual([]);
    await input.close();
  });

  it('is declined where it cannot work: stdout, a compressed output, a format without it, a base held in memory', async () => {
    const memory = new MemoryDevice(65536);
    memory.bytes.fill(7);
    const { base, input } = await scenario(6);
    expect(await stageDisk(base, prepareOutput('-', 'raw'))).toBeUndefined();
    expect(await stageDisk(base, prepareOutput(dir.file('x.qcow2'), 'qcow2', { compress: 'on' }))).toBeUndefined();
    expect(await stageDisk(base, prepareOutput(dir.file('x.vmdk'), 'vmdk'))).toBeUndefined();
    expect(await stageDisk(memory, prepareOutput(dir.file('x.raw'), 'raw'))).toBeUndefined();
    // Nothing was left by the declined ones.
    expect((await readdir(dir.path)).filter((n) => n.startsWith('.x.') || n.startsWith('x.'))).toEqual([]);
    await input.close();
  });
});
