import { describe, expect, it } from 'vitest';
import { prng } from '@amitrans/testkit';
import { unitWindows, type Range } from '../src/index.js';

/** Sorted, non-overlapping random ranges inside [0, size). */
function randomRanges(r: ReturnType<typeof prng>, size: number, count: number): Range[] {
  const points = new Set<number>();
  while (points.size < count * 2) points.add(r.int(0, size));
  const sorted = [...points].sort((a, b) => a - b);
  const out: Range[] = [];
  for (let i = 0; i + 1 < sorted.length; i += 2) if (sorted[i + 1]! > sorted[i]!) out.push({ offset: sorted[i]!, length: sorted[i + 1]! - sorted[i]! });
  return out;
}

function merged(ranges: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last && last.offset + last.length === r.offset) out[out.length - 1] = { offset: last.offset, length: last.length + r.length };
    else out.push({ ...r });
  }
  return out;
}

describe('unitWindows', () => {
  it('covers exactly the units holding the ranges, in windows of whole units no larger than the window size (300 seeded cases)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = prng(seed);
      const unit = [512, 4096, 65536][seed % 3]!;
      const size = r.int(1, 64) * unit + (seed % 2 === 0 ? r.int(1, unit - 1) : 0);
      const batch = [unit, 3 * unit, 16 * unit][seed % 5 % 3]!;
      const ranges = merged(randomRanges(r, size, r.int(1, 12)));
      const windows = [...unitWindows(ranges, unit, batch)];
      const pieces: Range[] = [];
      let prevEnd = 0;
      const covered = new Set<number>();
      for (const w of windows) {
        expect(w.offset % unit).toBe(0);
        expect(w.offset).toBeGreaterThanOrEqual(prevEnd);
        expect(w.length).toBeLessThanOrEqual(batch);
        expect(w.length % unit).toBe(0);
        expect(w.pieces.length).toBeGreaterThan(0);
        for (const p of w.pieces) {
          expect(p.offset).toBeGreaterThanOrEqual(w.offset);
          expect(p.offset + p.length).toBeLessThanOrEqual(w.offset + w.length);
        }
        for (let u = w.offset; u < w.offset + w.length; u += unit) covered.add(u / unit);
        pieces.push(...w.pieces);
        prevEnd = w.offset + w.length;
      }
      expect(merged(pieces)).toEqual(ranges);
      const wanted = new Set<number>();
      for (const x of ranges) for (let u = Math.floor(x.offset / unit); u * unit < x.offset + x.length; u++) wanted.add(u);
      expect([...covered].sort((a, b) => a - b)).toEqual([...wanted].sort((a, b) => a - b));
    }
  });
});
