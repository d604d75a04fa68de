import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { ConcatDevice, CowOverlay, FileDevice, MaskedDevice, MemoryDevice, MemorySink, ZeroDevice } from '@amitrans/block';
import { requireTools, run, sha256File, tmpDir, writeSparseImage, type SparseLayout, type TmpDir, GuardedSource, expectSameAsFile, fileSink, outcome, streamSinkTo } from '@amitrans/testkit';
import { qcow2Driver } from '../src/index.js';

let dir: TmpDir;
// Not a multiple of 1 MiB (nor of the 64 KiB cluster).
const SIZE = 13 * 1024 * 1024 + 45 * 512;
let layout: SparseLayout;

beforeAll(async () => {
  dir = await tmpDir();
  layout = await writeSparseImage(dir.file('src.raw'), SIZE, 7);
});
afterAll(() => dir.remove());

async function writeWith(name: string, options: Record<string, string>, stream = false): Promise<string> {
  const out = dir.file(name);
  const src = await GuardedSource.open(dir.file('src.raw'), layout);
  const sink = stream ? streamSinkTo(out) : await fileSink(out);
  const result = await qcow2Driver.write!(src, sink, { options });
  await sink.commit();
  // Only the data runs were read.
  const dataBytes = layout.runs.filter((r) => r.kind === 'data').reduce((n, r) => n + r.length, 0);
  expect(result.bytesRead).toBe(dataBytes);
  expect(src.reads).toBe(dataBytes);
  await src.close();
  return out;
}

async function oracle(out: string, compat: string): Promise<void> {
  await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', dir.file('src.raw'), out]);
  const check = await run('qemu-img', ['check', '--output=json', out]);
  const report = JSON.parse(check.stdout) as Record<string, unknown>;
  expect(report['check-errors']).toBe(0);
  expect(report['corruptions'] ?? 0).toBe(0);
  expect(report['leaks'] ?? 0).toBe(0);
  expect(report['format']).toBe('qcow2');
  const info = JSON.parse((await run('qemu-img', ['info', '--output=json', out])).stdout) as {
    format: string;
    'virtual-size': number;
    'cluster-size': number;
    'format-specific': { data: { compat: string } };
  };
  expect(info.format).toBe('qcow2');
  expect(info['virtual-size']).toBe(SIZE);
  expect(info['cluster-size']).toBe(65536);
  expect(info['format-specific'].data.compat).toBe(compat);
  // And our own reader agrees.
  const file = await FileDevice.open(out);
  await expectSameAsFile(await qcow2Driver.open!(file), dir.file('src.raw'));
  await file.close();
}

describe('qcow2 writer, checked by qemu-img', () => {
  it('writes v3 (compat 1.1) to a file', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    const out = await writeWith('a.qcow2', {});
    await oracle(out, '1.1');
  });

  it('writes v3 to a non-seekable stream in one pass', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    expect(qcow2Driver.canStream!({})).toBe(true);
    const out = await writeWith('s.qcow2', {}, true);
    await oracle(out, '1.1');
  });

  it('writes compressed clusters (compress=on) in parallel, deterministically', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    expect(qcow2Driver.canStream!({ compress: 'on' })).toBe(false);
    const out = await writeWith('c.qcow2', { compress: 'on' });
    await oracle(out, '1.1');
    const map = await run('qemu-img', ['check', out]);
    expect(map.stdout).toMatch(/compressed clusters/);
    expect(map.stdout).not.toMatch(/0\.00% compressed/);
    const again = await writeWith('c2.qcow2', { compress: 'on' });
    expect(await sha256File(again)).toBe(await sha256File(out));
  });

  it('writes v2 (compat 0.10), plain and compressed', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    await oracle(await writeWith('v2.qcow2', { compat: '0.10' }), '0.10');
    await oracle(await writeWith('v2c.qcow2', { compat: '0.10', compress: 'on' }), '0.10');
  });

  it('writes a composite source (boot sectors in memory, a raw file under an overlay, free ranges masked, zeros after)', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    const base = await FileDevice.open(dir.file('src.raw'));
    const overlay = new CowOverlay(base);
    await overlay.write(new Uint8Array(70_000).fill(0xab), 1_000_000);
    await overlay.write(new Uint8Array(3000).fill(0xcd), SIZE - 3000);
    const holes = [{ offset: 65536 * 3, length: 65536 * 5 + 4096 }, { offset: 5 * 1024 * 1024, length: 12288 }];
    const head = new MemoryDevice(4096);
    head.bytes.fill(0xee, 0, 446);
    const source = new ConcatDevice([head, new MaskedDevice(overlay, holes), new ZeroDevice(65536 + 512)]);
    // What it must read as, for qemu-img compare.
    const want = new Uint8Array(source.size);
    await source.read(want, 0);
    await writeFile(dir.file('engine-want.raw'), want);
    const out = dir.file('engine.qcow2');
    const sink = await fileSink(out);
    const result = await qcow2Driver.write!(source, sink, {});
    await sink.commit();
    expect(result.bytesRead).toBeGreaterThan(SIZE / 4);
    await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', dir.file('engine-want.raw'), out]);
    const check = JSON.parse((await run('qemu-img', ['check', '--output=json', out])).stdout) as Record<string, number>;
    expect(check['check-errors']).toBe(0);
    expect(check['leaks'] ?? 0).toBe(0);
    expect(check['corruptions'] ?? 0).toBe(0);
    // No all-zero cluster is stored: every data cluster qemu-img maps holds a non-zero byte.
    const map = JSON.parse((await run('qemu-img', ['map', '--output=json', out])).stdout) as { start: number; length: number; data: boolean; offset?: number }[];
    const file = await readFile(out);
    for (const m of map.filter((x) => x.data)) {
      for (let at = 0; at < m.length; at += 65536) {
        const host = m.offset! + at;
        expect(file.subarray(host, host + 65536).some((b) => b !== 0)).toBe(true);
      }
    }
    await base.close();
  });

  it('stores no cluster for all-zero data', async () => {
    const zeros = new MemoryDevice(new Uint8Array(4 * 1024 * 1024), { writable: false });
    const sink = new MemorySink();
    await qcow2Driver.write!(zeros, sink, {});
    await sink.commit();
    // header, refcount table, refcount block, L1, one reserved (unused) L2 slot, no data.
    expect(sink.bytes.length).toBe(5 * 65536);
    const back = await qcow2Driver.open!(new MemoryDevice(sink.bytes));
    const kinds = [];
    for await (const e of back.extents()) kinds.push(e.kind);
    expect(kinds).toEqual(['unallocated']);
  });

  it('writes an empty image and a large sparse one without reading anything', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    const out = dir.file('big.qcow2');
    const sink = await fileSink(out);
    const r = await qcow2Driver.write!(new ZeroDevice(3 * 1024 ** 4), sink, {});
    await sink.commit();
    expect(r.bytesRead).toBe(0);
    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', out])).stdout) as { 'virtual-size': number };
    expect(info['virtual-size']).toBe(3 * 1024 ** 4);
    await run('qemu-img', ['check', out]);
  });

  it('refuses unknown options and compression on a stream', async () => {
    const src = new ZeroDevice(1 << 20);
    expect(await outcome(qcow2Driver.write!(src, new MemorySink(), { options: { nope: '1' } }))).toBe('E_UNSUPPORTED');
    expect(await outcome(qcow2Driver.write!(src, new MemorySink(), { options: { cluster_size: '1000' } }))).toBe('E_UNSUPPORTED');
    expect(await outcome(qcow2Driver.write!(src, streamSinkTo(dir.file('x')), { options: { compress: 'on' } }))).toBe('E_UNSUPPORTED');
    expect(qcow2Driver.canStream!({ nope: '1' })).toBe(false);
  });
});
