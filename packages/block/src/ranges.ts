import type { Range } from './device.js';

/** `ranges` sorted, with overlapping and touching ones joined; empty ones dropped. */
export function mergeRanges(ranges: Iterable<Range>): Range[] {
  const sorted = [...ranges].filter((r) => r.length > 0).sort((a, b) => a.offset - b.offset);
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.offset <= last.offset + last.length) {
      out[out.length - 1] = { offset: last.offset, length: Math.max(last.length, r.offset + r.length - last.offset) };
    } else out.push({ offset: r.offset, length: r.length });
  }
  return out;
}

/** The bytes in exactly one of `a` and `b` (each any set of ranges), sorted and merged. */
export function xorRanges(a: Iterable<Range>, b: Iterable<Range>): Range[] {
  // Each merged set toggles membership at its boundaries; a byte is in the result when the
  // two memberships differ.
  const edges: number[] = [];
  for (const r of [...mergeRanges(a), ...mergeRanges(b)]) edges.push(r.offset, r.offset + r.length);
  edges.sort((x, y) => x - y);
  const out: Range[] = [];
  // Every boundary flips the parity of "inside" counts; odd parity is the difference.
  for (let i = 0; i + 1 < edges.length; i++) {
    if (i % 2 === 0 && edges[i + 1]! > edges[i]!) out.push({ offset: edges[i]!, length: edges[i + 1]! - edges[i]! });
  }
  return mergeRanges(out);
}

/** `ranges` moved by `by` bytes and cut to [0, size). */
export function shiftRanges(ranges: Iterable<Range>, by: number, size: number): Range[] {
  const out: Range[] = [];
  for (const r of ranges) {
    const start = Math.max(0, r.offset + by);
    const end = Math.min(size, r.offset + r.length + by);
    if (end > start) out.push({ offset: start, length: end - start });
  }
  return out;
}
