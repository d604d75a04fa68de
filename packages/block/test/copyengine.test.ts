import { readFile, truncate, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng, readAll, requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import {
  ConcatDevice,
  CowOverlay,
  FileDevice,
  FileSink,
  ImageError,
  MaskedDevice,
  MemoryDevice,
  SliceDevice,
  ZeroDevice,
  dataRanges,
  engineCopy,
  isZeroAt,
  locate,
  mostlyInFiles,
  unitWindows,
  type BlockDevice,
  type Range,
} from '../src/index.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(() => dir.remove());

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
  it('covers exactly the units holding the ranges, in aligned windows no larger than a batch (300 seeded cases)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = prng(seed);
      const unit = [512, 4096, 65536][seed % 3]!;
      const size = r.int(1, 64) * unit + (seed % 2 === 0 ? r.int(1, unit - 1) : 0);
      const batch = [unit, 3 * unit, 16 * unit][seed % 5 % 3]!;
      const ranges = merged(randomRanges(r, size, r.int(1, 12)));
      const windows = [...unitWindows(ranges, unit, batch, size)];
      const pieces: Range[] = [];
      let prevEnd = 0;
      const covered = new Set<number>();
      for (const w of windows) {
        expect(w.offset % unit).toBe(0);
        expect(w.offset).toBeGreaterThanOrEqual(prevEnd);
        expect(w.length).toBeLessThanOrEqual(batch);
        expect(w.length % unit === 0 || w.offset + w.length === size).toBe(true);
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

/**
 * A translated AMI in miniature: a head in memory, then a raw file under a copy-on-write
 * overlay (with edits) with free blocks masked, then zeros. The file has zero stretches.
 */
async function composite(seed: number, unit: number): Promise<{ device: BlockDevice; base: FileDevice; path: string }> {
  const r = prng(seed);
  const fsSize = r.int(40, 90) * 4096 + (seed % 2) * 1536;
  const bytes = r.bytes(fsSize);
  for (const z of randomRanges(r, fsSize, 6)) bytes.fill(0, z.offset, z.offset + z.length);
  // Whole zero units too, so some units are dropped.
  for (let i = 0; i < 3; i++) {
    const u = r.int(0, Math.floor(fsSize / unit) - 1);
    bytes.fill(0, u * unit, (u + 1) * unit);
  }
  const path = dir.file(`base-${seed}.raw`);
  await writeFile(path, bytes);
  const base = await FileDevice.open(path);
  const overlay = new CowOverlay(base, { chunkSize: 4096 });
  for (let i = 0; i < 5; i++) {
    const at = r.int(0, fsSize - 100);
    await overlay.write(r.bytes(r.int(1, Math.min(9000, fsSize - at))), at);
  }
  const holes = randomRanges(r, fsSize, 4).map((h) => ({ offset: Math.floor(h.offset / 4096) * 4096, length: Math.max(4096, Math.floor(h.length / 4096) * 4096) })).filter((h) => h.offset + h.length <= fsSize);
  const masked = new MaskedDevice(overlay, holes);
  const head = new MemoryDevice(r.int(1, 40) * 512);
  head.bytes.set(r.bytes(head.size).subarray(0, 700 + (seed % 50)));
  const device = new ConcatDevice([head, new SliceDevice(masked, 0, fsSize), new ZeroDevice(r.int(0, 3) * unit)]);
  return { device, base, path };
}

describe('engineCopy: the copy worker', () => {
  it('locates a composite device: the file where it is, memory and edits as device, holes as zero', async () => {
    const { device, base } = await composite(11, 4096);
    const want = await readAll(device);
    let at = 0;
    for await (const l of locate(device)) {
      expect(l.offset).toBe(at);
      at += l.length;
      const got = new Uint8Array(l.length);
      if (l.kind === 'file') {
        const fh = await readFile(base.path);
        got.set(fh.subarray(l.fileOffset, l.fileOffset + l.length));
      } else if (l.kind === 'device') {
        await device.read(got, l.offset);
      }
      expect(Buffer.compare(Buffer.from(got), Buffer.from(want.subarray(l.offset, l.offset + l.length)))).toBe(0);
    }
    expect(at).toBe(device.size);
    expect(await mostlyInFiles(device, await dataRanges(device))).toBe(true);
    expect(await mostlyInFiles(new MemoryDevice(65536), [{ offset: 0, length: 65536 }])).toBe(false);
    await base.close();
  });

  for (const unit of [4096, 65536]) {
    it(`positional: every unit that is not all zeros lands at its offset + shift, zero units stay holes (unit ${unit}, 12 seeds)`, async (ctx) => {
      requireTools(ctx, 'qemu-img');
      for (let seed = 1; seed <= 12; seed++) {
        const { device, base } = await composite(seed * 7 + unit, unit);
        const want = await readAll(device);
        const ranges = await dataRanges(device);
        const out = await FileSink.create(dir.file(`pos-${unit}-${seed}.raw`));
        const shift = (seed % 3) * 512;
        const copied = await engineCopy(device, ranges, { fd: out.file!.fd, path: out.file!.path, mode: 'positional', unit, shift, chunkSize: seed % 2 ? 8192 : undefined, batchSize: seed % 3 ? unit * 2 : undefined, workers: seed % 4 === 0 ? 1 : undefined });
        await out.skip(shift + device.size);
        await out.commit();
        const got = await readFile(dir.file(`pos-${unit}-${seed}.raw`));
        expect(got.length).toBe(shift + device.size);
        expect(Buffer.compare(got.subarray(shift), Buffer.from(want))).toBe(0);
        // What was read and written, by the model.
        let read = 0;
        for (const r of ranges) read += r.length;
        let written = 0;
        for (const w of unitWindows(ranges, unit, unit, device.size)) if (!isZeroAt(want, w.offset, w.offset + w.length)) written += w.length;
        expect(copied.bytesRead).toBe(read);
        expect(copied.bytesWritten).toBe(written);
        // Holes, as the file system reports them (SEEK_DATA, through qemu-img map): no
        // all-zero unit was written. Checked where units fall on whole 4 KiB blocks.
        if (shift === 0) {
          const map = JSON.parse((await run('qemu-img', ['map', '--output=json', '-f', 'raw', dir.file(`pos-${unit}-${seed}.raw`)])).stdout) as { start: number; length: number; data: boolean }[];
          const data = map.filter((m) => m.data);
          let holes = 0;
          for (let u = 0; u + unit <= device.size; u += unit) {
            if (!isZeroAt(want, u, u + unit)) continue;
            holes++;
            expect(data.some((m) => m.start < u + unit && m.start + m.length > u)).toBe(false);
          }
          expect(holes).toBeGreaterThan(0);
        }
        await base.close();
      }
    });
  }

  it('append: units that are not all zeros are stored one after another and reported; zero units are not stored (12 seeds)', async () => {
    const unit = 65536;
    for (let seed = 1; seed <= 12; seed++) {
      const { device, base } = await composite(seed * 13, unit);
      const want = await readAll(device);
      const padded = new Uint8Array(Math.ceil(device.size / unit) * unit);
      padded.set(want);
      const ranges = await dataRanges(device);
      const path = dir.file(`app-${seed}.bin`);
      const out = await FileSink.create(path);
      const appendAt = 3 * unit;
      const stored: number[] = [];
      const copied = await engineCopy(device, ranges, {
        fd: out.file!.fd,
        path: out.file!.path,
        mode: 'append',
        unit,
        appendAt,
        batchSize: seed % 2 ? unit : 4 * unit,
        depth: seed % 4 === 0 ? 1 : undefined,
        onResult: (r) => void stored.push(...r.stored),
      });
      await out.skip(copied.position);
      await out.commit();
      const got = await readFile(path);
      const seen = new Set<number>();
      let next = appendAt;
      for (let k = 0; k < stored.length; k += 3) {
        const [first, count, at] = [stored[k]!, stored[k + 1]!, stored[k + 2]!];
        expect(at).toBe(next);
        next += count * unit;
        for (let c = first; c < first + count; c++) {
          expect(seen.has(c)).toBe(false);
          seen.add(c);
          const host = at + (c - first) * unit;
          expect(Buffer.compare(got.subarray(host, host + unit), Buffer.from(padded.subarray(c * unit, (c + 1) * unit)))).toBe(0);
        }
      }
      expect(copied.position).toBe(next);
      for (const w of unitWindows(ranges, unit, unit, Number.POSITIVE_INFINITY)) {
        const c = w.offset / unit;
        expect(seen.has(c)).toBe(!isZeroAt(padded, w.offset, w.offset + unit));
      }
      await base.close();
    }
  });

  it('a source file shorter than its device fails with E_TRUNCATED naming the file and offset, and stops the worker', async () => {
    const path = dir.file('short.raw');
    await writeFile(path, prng(5).bytes(1 << 20));
    const base = await FileDevice.open(path);
    await truncate(path, 300_000);
    const out = await FileSink.create(dir.file('short.out'));
    const err = await engineCopy(base, [{ offset: 0, length: 1 << 20 }], { fd: out.file!.fd, path: out.file!.path, mode: 'positional', unit: 4096 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).code).toBe('E_TRUNCATED');
    expect((err as ImageError).file).toBe(path);
    expect((err as ImageError).offset).toBe(300_000);
    await out.abort();
    await base.close();
  });

  it('an output that cannot be written fails with E_IO naming the output and the offset', async () => {
    const path = dir.file('src-ro.raw');
    await writeFile(path, prng(7).bytes(1 << 20));
    const base = await FileDevice.open(path);
    await writeFile(dir.file('ro.out'), '');
    const readOnly = await FileDevice.open(dir.file('ro.out'));
    const err = await engineCopy(base, [{ offset: 0, length: 1 << 20 }], { fd: readOnly.handle.fd, path: dir.file('ro.out'), mode: 'positional', unit: 4096, shift: 4096 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).code).toBe('E_IO');
    expect((err as ImageError).file).toBe(dir.file('ro.out'));
    expect((err as ImageError).offset! % 4096).toBe(0);
    expect((err as ImageError).offset).toBeGreaterThanOrEqual(4096);
    await readOnly.close();
    await base.close();
  });

  it('an abort signal stops the copy with the abort reason', async () => {
    const path = dir.file('abort.raw');
    await writeFile(path, prng(6).bytes(4 << 20));
    const base = await FileDevice.open(path);
    const out = await FileSink.create(dir.file('abort.out'));
    const ac = new AbortController();
    const err = await engineCopy(base, [{ offset: 0, length: 4 << 20 }], {
      fd: out.file!.fd,
      path: out.file!.path,
      mode: 'positional',
      unit: 4096,
      batchSize: 65536,
      depth: 1,
      signal: ac.signal,
      onResult: () => ac.abort(new Error('stop here')),
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('stop here');
    await out.abort();
    await base.close();
  });
});
