import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDevice, collectExtents } from '@amitrans/block';
import { requireTools, run, tmpDir, writeSparseImage, type TmpDir, expectSameAsFile } from '@amitrans/testkit';
import { qcow2Driver } from '../src/index.js';

let dir: TmpDir;
const SIZE = 9 * 1024 * 1024 + 7 * 512;

beforeAll(async () => {
  dir = await tmpDir();
  await writeSparseImage(dir.file('src.raw'), SIZE, 11);
});
afterAll(() => dir.remove());

async function convertAndRead(name: string, args: string[]): Promise<void> {
  const out = dir.file(name);
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ...args, dir.file('src.raw'), out]);
  const file = await FileDevice.open(out);
  try {
    const dev = await qcow2Driver.open!(file, { file: out });
    expect(dev.size).toBe(SIZE);
    await expectSameAsFile(dev, dir.file('src.raw'));
    // The allocation map comes from the tables: qemu-img's own map agrees on what holds data.
    const map = JSON.parse((await run('qemu-img', ['map', '--output=json', out])).stdout) as { start: number; length: number; data: boolean }[];
    const ours = await collectExtents(dev);
    const dataBytes = (xs: { length: number }[]) => xs.reduce((n, x) => n + x.length, 0);
    expect(dataBytes(ours.filter((e) => e.kind === 'data'))).toBe(dataBytes(map.filter((m) => m.data)));
    await dev.close();
  } finally {
    await file.close();
  }
}

describe('qcow2 reader against qemu-img', () => {
  it('reads compat=0.10 (v2) images', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    await convertAndRead('v2.qcow2', ['-o', 'compat=0.10']);
  });

  it('reads compat=1.1 (v3) images', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    await convertAndRead('v3.qcow2', ['-o', 'compat=1.1']);
  });

  it('reads compressed (-c) images', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    await convertAndRead('c.qcow2', ['-c']);
  });

  it('reads small-cluster images whose L1 spans several L2 tables', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    await convertAndRead('small.qcow2', ['-o', 'cluster_size=4096']);
    await convertAndRead('smallc.qcow2', ['-c', '-o', 'cluster_size=4096']);
  });

  it('reports v3 zero clusters as zero', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    const path = dir.file('zero.qcow2');
    await run('qemu-img', ['create', '-f', 'qcow2', path, '4M']);
    await run('qemu-io', ['-c', 'write -P 0x5a 0 128k', '-c', 'write -z 1M 256k', path]);
    const file = await FileDevice.open(path);
    const dev = await qcow2Driver.open!(file);
    const ext = await collectExtents(dev);
    expect(ext).toEqual([
      { offset: 0, length: 131072, kind: 'data' },
      { offset: 131072, length: 1048576 - 131072, kind: 'unallocated' },
      { offset: 1048576, length: 262144, kind: 'zero' },
      { offset: 1048576 + 262144, length: 4 * 1048576 - 1048576 - 262144, kind: 'unallocated' },
    ]);
    const buf = new Uint8Array(4096);
    await dev.read(buf, 4096);
    expect(buf.every((b) => b === 0x5a)).toBe(true);
    await file.close();
  });

  it('probes v2 and v3 headers', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    const { readFile } = await import('node:fs/promises');
    const head = await readFile(dir.file('v3.qcow2'));
    expect(qcow2Driver.probe({ head: head.subarray(0, 512), tail: new Uint8Array(0), size: head.length })).toEqual({
      format: 'qcow2',
      subformat: 'compat 1.1',
      virtualSize: SIZE,
    });
    const v2 = await readFile(dir.file('v2.qcow2'));
    expect(qcow2Driver.probe({ head: v2.subarray(0, 512), tail: new Uint8Array(0), size: v2.length })?.subformat).toBe('compat 0.10');
    expect(qcow2Driver.probe({ head: new Uint8Array(512), tail: new Uint8Array(0), size: 512 })).toBeUndefined();
  });
});
