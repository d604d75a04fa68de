import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { FileDevice, FileSink, collectExtents } from '@amitrans/block';
import { requireTools, run, sha256File, tmpDir, writeSparseImage, type TmpDir, deviceHash, rawSource, uncoveredData, zeroTail } from '@amitrans/testkit';
import { geometryForSectors, geometrySectors, openVhd, parseFooter, serializeFooter, vhdDriver, type VhdWriteResult } from '../src/index.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir('amitrans-vhd-');
});
afterAll(async () => {
  await dir.remove();
});

const MIB = 1024 * 1024;

async function qemuInfo(path: string, format = 'vpc'): Promise<{ format: string; 'virtual-size': number }> {
  const { stdout } = await run('qemu-img', ['info', '--output=json', '-f', format, path]);
  return JSON.parse(stdout) as { format: string; 'virtual-size': number };
}

async function writeWith(src: string, out: string, options: Record<string, string>): Promise<VhdWriteResult> {
  const { file, source } = await rawSource(src);
  const sink = await FileSink.create(out);
  try {
    const result = await vhdDriver.write(source, sink, { options });
    await sink.commit();
    return result;
  } catch (err) {
    await sink.abort();
    throw err;
  } finally {
    await file.close();
  }
}

describe('VHD writer against qemu-img', () => {
  const cases: { name: string; options: Record<string, string>; seed: number }[] = [
    { name: 'dynamic (default)', options: {}, seed: 1 },
    { name: 'fixed', options: { subformat: 'fixed' }, seed: 2 },
    { name: 'dynamic force_size', options: { subformat: 'dynamic', force_size: 'on' }, seed: 3 },
    { name: 'fixed force_size', options: { subformat: 'fixed', force_size: 'on' }, seed: 4 },
    { name: 'azure', options: { azure: 'on' }, seed: 5 },
  ];
  for (const c of cases) {
    it(`${c.name}: qemu-img compare, info and our reader agree`, async (ctx) => {
      requireTools(ctx, 'qemu-img');
      const size = 7 * MIB + 5 * 512 + 37; // not a multiple of 1 MiB, not even of 512
      const src = dir.file(`w${c.seed}.raw`);
      const out = dir.file(`w${c.seed}.vhd`);
      await writeSparseImage(src, size, c.seed);
      const result = await writeWith(src, out, { ...c.options, uuid: '01234567-89ab-cdef-0123-456789abcdef', timestamp: '1700000000' });

      const cmp = await run('qemu-img', ['compare', '-f', 'raw', src, '-F', 'vpc', out]);
      expect(cmp.stdout).toContain('Images are identical');

      const info = await qemuInfo(out);
      expect(info.format).toBe('vpc');
      expect(info['virtual-size']).toBe(result.virtualSize);
      const sectors = Math.ceil(size / 512) * 512;
      if (c.options.azure) {
        expect(result.virtualSize).toBe(8 * MIB);
        expect((await stat(out)).size).toBe(8 * MIB + 512);
      } else if (c.options.force_size) {
        expect(result.virtualSize).toBe(sectors);
      } else {
        expect(result.virtualSize).toBeGreaterThanOrEqual(sectors);
        expect(result.notes.join()).toContain('rounded up');
      }

      if (c.options.subformat === 'fixed' || c.options.azure) {
        // Holes and zero runs of the source stay holes in the output file.
        const st = await stat(out);
        expect(st.blocks * 512).toBeLessThan(st.size * 0.9);
      }

      const file = await FileDevice.open(out);
      try {
        const vhd = await openVhd(file);
        expect(vhd.size).toBe(result.virtualSize);
        expect(vhd.subformat).toBe(c.options.subformat ?? (c.options.azure ? 'fixed' : 'dynamic'));
        const plain = await FileDevice.open(src);
        expect(await deviceHash(vhd, size)).toBe(await deviceHash(plain));
        await plain.close();
        expect(await zeroTail(vhd, size)).toBe(true);
      } finally {
        await file.close();
      }
    });
  }

  it('dynamic output stores only blocks with non-zero data and a BAT of exactly ceil(size / 2 MiB)', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    const src = dir.file('blocks.raw');
    const out = dir.file('blocks.vhd');
    const size = 9 * MIB + 512;
    const fh = await import('node:fs/promises').then((fs) => fs.open(src, 'w'));
    await fh.truncate(size);
    await fh.write(new Uint8Array(4096).fill(7), 0, 4096, 2 * MIB + 12345); // block 1
    await fh.write(new Uint8Array(65536), 0, 65536, 5 * MIB); // written zeros: block 2, must not be stored
    await fh.write(new Uint8Array(1).fill(1), 0, 1, size - 1); // the last, partial block 4
    await fh.close();
    const result = await writeWith(src, out, { subformat: 'dynamic', force_size: 'on' });
    expect(result.virtualSize).toBe(size);
    // footer copy + header + BAT (5 entries, one sector) + 2 × (bitmap + 2 MiB) + footer
    expect((await stat(out)).size).toBe(512 + 1024 + 512 + 2 * (512 + 2 * MIB) + 512);
    const { stdout } = await run('qemu-img', ['map', '--output=json', '-f', 'vpc', out]);
    const map = JSON.parse(stdout) as { start: number; length: number; data: boolean }[];
    expect(map.filter((m) => m.data).map((m) => [m.start, m.length])).toEqual([[2 * MIB, 2 * MIB], [8 * MIB, MIB + 512]]);
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', src, '-F', 'vpc', out]);
    expect(cmp.stdout).toContain('Images are identical');
  });

  it('output is reproducible with uuid= and timestamp=', async () => {
    const src = dir.file('repro.raw');
    await writeSparseImage(src, 3 * MIB, 42);
    const opts = { uuid: 'a1b2c3d4-0000-1111-2222-333344445555', timestamp: '2024-01-02T03:04:05Z' };
    await writeWith(src, dir.file('r1.vhd'), opts);
    await writeWith(src, dir.file('r2.vhd'), opts);
    expect(await sha256File(dir.file('r1.vhd'))).toBe(await sha256File(dir.file('r2.vhd')));
  });
});

describe('VHD reader against images made by qemu-img convert', () => {
  const cases = [
    { name: 'fixed', o: 'subformat=fixed', seed: 11 },
    { name: 'dynamic', o: 'subformat=dynamic', seed: 12 },
    { name: 'fixed force_size', o: 'subformat=fixed,force_size=on', seed: 13 },
    { name: 'dynamic force_size', o: 'subformat=dynamic,force_size=on', seed: 14 },
  ];
  for (const c of cases) {
    it(`${c.name}: reads back byte-identical, map covers all data`, async (ctx) => {
      requireTools(ctx, 'qemu-img');
      const src = dir.file(`q${c.seed}.raw`);
      const out = dir.file(`q${c.seed}.vhd`);
      const layout = await writeSparseImage(src, 6 * MIB + 3 * 512, c.seed);
      // A 4 MiB hole at the end, so a dynamic image surely has unallocated blocks.
      const size = 10 * MIB + 3 * 512;
      await truncate(src, size);
      await run('qemu-img', ['convert', '-f', 'raw', '-O', 'vpc', '-o', c.o, src, out]);
      const info = await qemuInfo(out);
      const file = await FileDevice.open(out);
      try {
        const vhd = await openVhd(file);
        // qemu 7.2 and amitrans agree on the size of what qemu writes ('qemu' CHS or 'qem2').
        expect(vhd.size).toBe(info['virtual-size']);
        expect(vhd.subformat).toBe(c.o.includes('fixed') ? 'fixed' : 'dynamic');
        const plain = await FileDevice.open(src);
        expect(await deviceHash(vhd, size)).toBe(await deviceHash(plain));
        await plain.close();
        expect(await zeroTail(vhd, size)).toBe(true);
        const map = await collectExtents(vhd);
        expect(map.reduce((s, e) => s + e.length, 0)).toBe(vhd.size);
        expect(uncoveredData(layout, map)).toEqual([]);
        if (vhd.subformat === 'dynamic') expect(map.some((e) => e.kind === 'unallocated')).toBe(true);
      } finally {
        await file.close();
      }
    });
  }

  it('an Azure-exported footer (creator "wa\\0\\0"): current_size for us, CHS for qemu-img 7.2 (old whitelist)', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    const src = dir.file('wa.raw');
    const out = dir.file('wa.vhd');
    await writeSparseImage(src, 5 * MIB, 31);
    await writeWith(src, out, { subformat: 'fixed', force_size: 'on' });
    const bytes = new Uint8Array(await readFile(out));
    const at = bytes.length - 512;
    const footer = parseFooter(bytes.subarray(at));
    const geometry = geometryForSectors((5 * MIB) / 512); // what Hyper-V/Azure write: product <= size
    bytes.set(serializeFooter({ ...footer, creatorApplication: 'wa\0\0', geometry }), at);
    await writeFile(out, bytes);
    const chs = geometrySectors(geometry) * 512;
    expect(chs).toBeLessThan(5 * MIB);
    expect((await qemuInfo(out))['virtual-size']).toBe(chs);
    const file = await FileDevice.open(out);
    expect((await openVhd(file)).size).toBe(5 * MIB);
    await file.close();
  });

  it('probe: dynamic by its head, fixed by its tail, with virtual sizes', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    const src = dir.file('p.raw');
    await writeSparseImage(src, 4 * MIB, 21);
    for (const sub of ['fixed', 'dynamic']) {
      const out = dir.file(`p-${sub}.vhd`);
      await run('qemu-img', ['convert', '-f', 'raw', '-O', 'vpc', '-o', `subformat=${sub},force_size=on`, src, out]);
      const file = await FileDevice.open(out);
      const head = new Uint8Array(Math.min(65536, file.size));
      const tail = new Uint8Array(Math.min(65536, file.size));
      await file.read(head, 0);
      await file.read(tail, file.size - tail.length);
      expect(vhdDriver.probe({ head, tail, size: file.size })).toEqual({ format: 'vhd', subformat: sub, virtualSize: 4 * MIB });
      await file.close();
    }
    const raw = await FileDevice.open(src);
    const buf = new Uint8Array(65536);
    await raw.read(buf, 0);
    expect(vhdDriver.probe({ head: buf, tail: buf, size: raw.size })).toBeUndefined();
    await raw.close();
  });
});
