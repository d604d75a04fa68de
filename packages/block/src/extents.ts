import type { BlockDevice, Extent, ExtentKind, Range } from './device.js';
import { ImageError } from './errors.js';

/** Coalesce neighbouring extents of the same kind (input must be sorted and contiguous). */
export async function* mergeExtents(source: AsyncIterable<Extent>): AsyncIterable<Extent> {
  let pending: Extent | undefined;
  for await (const e of source) {
    if (e.length === 0) continue;
    if (pending && pending.kind === e.kind && pending.offset + pending.length === e.offset) {
      pending = { offset: pending.offset, length: pending.length + e.length, kind: e.kind };
    } else {
      if (pending) yield pending;
      pending = e;
    }
  }
  if (pending) yield pending;
}

/** The merged extent list of a device (or a range of it) as an array. */
export async function collectExtents(device: BlockDevice, range?: Range): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of mergeExtents(device.extents(range))) out.push(e);
  return out;
}

/** Bytes per kind over a device or range. */
export async function extentTotals(device: BlockDevice, range?: Range): Promise<Record<ExtentKind, number>> {
  const totals: Record<ExtentKind, number> = { data: 0, zero: 0, unallocated: 0 };
  for await (const e of device.extents(range)) totals[e.kind] += e.length;
  return totals;
}

/** Clip a sorted extent list to a range; shifts nothing. */
export function* clipExtents(extents: Iterable<Extent>, range: Range): Iterable<Extent> {
  const end = range.offset + range.length;
  for (const e of extents) {
    const s = Math.max(e.offset, range.offset);
    const t = Math.min(e.offset + e.length, end);
    if (t > s) yield { offset: s, length: t - s, kind: e.kind };
  }
}

/** The largest single read `readAt` will allocate for. Anything bigger must be streamed. */
export const MAX_READ_AT = 256 * 1024 * 1024;

/** Read `length` bytes at `position` into a fresh buffer. */
export async function readAt(device: BlockDevice, position: number, length: number): Promise<Uint8Array> {
  if (!Number.isSafeInteger(length) || length < 0 || length > MAX_READ_AT) {
    throw new ImageError('E_TOO_LARGE', `refusing to read ${length} bytes at once`, { offset: position });
  }
  const buf = new Uint8Array(length);
  await device.read(buf, position);
  return buf;
}

/**
 * Read a device in order, chunk by chunk (at most `chunkSize` bytes), visiting only
 * extents of kind 'data'. Holes and zero extents are reported without being read.
 */
export async function* readData(
  device: BlockDevice,
  options: { chunkSize?: number; range?: Range } = {},
): AsyncIterable<{ offset: number; data: Uint8Array } | { offset: number; length: number; kind: 'zero' | 'unallocated' }> {
  const chunkSize = options.chunkSize ?? 2 * 1024 * 1024;
  for await (const e of mergeExtents(device.extents(options.range))) {
    if (e.kind !== 'data') {
      yield { offset: e.offset, length: e.length, kind: e.kind };
      continue;
    }
    for (let at = e.offset; at < e.offset + e.length; at += chunkSize) {
      const n = Math.min(chunkSize, e.offset + e.length - at);
      const data = new Uint8Array(n);
      await device.read(data, at);
      yield { offset: at, data };
    }
  }
}

/**
 * Coalesces the extents of a map walked in order (cluster by cluster, grain by grain):
 * `add` returns the run it closes when the kind changes, `finish` the last one.
 */
export class ExtentRun {
  private pending: { offset: number; length: number; kind: ExtentKind } | undefined;

  add(offset: number, length: number, kind: ExtentKind): Extent | undefined {
    if (this.pending && this.pending.kind === kind) {
      this.pending.length += length;
      return undefined;
    }
    const done = this.pending;
    this.pending = { offset, length, kind };
    return done;
  }

  finish(): Extent | undefined {
    const done = this.pending;
    this.pending = undefined;
    return done;
  }
}
