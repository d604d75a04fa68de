import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { truncate } from 'node:fs/promises';
import { FileDevice, FileSink, collectExtents } from '@amitrans/block';
import { requireTools, run, sha256File, tmpDir, writeSparseImage, type TmpDir, deviceHash, rawSource, uncoveredData, zeroTail } from '@amitrans/testkit';
import { BLOCK_FREE, openVdi, parseBlockMap, parseVdiHeader, rtuuidToString, vdiDriver, type VdiWriteResult } from '../src/index.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir('amitrans-vdi-');
});
afterAll(async () => {
  await dir.remove();
});

const MIB = 1024 * 1024;

async function writeWith(src: string, out: string, options: Record<string, string>): Promise<VdiWriteResult & { dataRead: number }> {
  const { file, source } = await rawSource(src);
  const sink = await FileSink.create(out);
  try {
    const result = await vdiDriver.write(source, sink, { options });
    await sink.commit();
    return { ...result, dataRead: source.dataRead };
  } catch (err) {
    await sink.abort();
    throw err;
  } finally {
    await file.close();
  }
}

async function headerOf(path: string) {
  const file = await FileDevice.open(path);
  try {
    const head = new Uint8Array(512);
    await file.read(head, 0);
    const header = parseVdiHeader(head);
    const raw = new Uint8Array(header.blocksInImage * 4);
    await file.read(raw, header.offBlocks);
    return { header, map: parseBlockMap(raw, header.blocksInImage), head };
  } finally {
    await file.close();
  }
}

describe('VDI writer against qemu-img', () => {
  for (const [name, options, seed] of [['dynamic', {}, 1], ['static', { subformat: 'static' }, 2], ['fixed via static=on', { static: 'on' }, 3]] as const) {
    it(`${name}: qemu-img compare, check and info agree`, async (ctx) => {
      requireTools(ctx, 'qemu-img');
      const size = 7 * MIB + 5 * 512 + 37;
      const src = dir.file(`w${seed}.raw`);
      const out = dir.file(`w${seed}.vdi`);
      await writeSparseImage(src, size, seed);
      const result = await writeWith(src, out, { ...options });
      expect(result.virtualSize).toBe(Math.ceil(size / 512) * 512);

      expect((await run('qemu-img', ['compare', '-f', 'raw', src, '-F', 'vdi', out])).stdout).toContain('Images are identical');
      expect((await run('qemu-img', ['check', '-f', 'vdi', out])).stdout).toContain('No errors were found');
      const info = JSON.parse((await run('qemu-img', ['info', '--output=json', out])).stdout) as { format: string; 'virtual-size': number };
      expect(info.format).toBe('vdi');
      expect(info['virtual-size']).toBe(result.virtualSize);

      const { header, map, head } = await headerOf(out);
      expect(Buffer.from(head.subarray(0, 37)).toString('latin1')).toBe('<<< Oracle VirtualBox Disk Image >>>\n');
      expect(header.headerSize).toBe(0x190);
      expect(header.offBlocks).toBe(MIB);
      expect(header.offData % MIB).toBe(0);
      expect(header.blockSize).toBe(MIB);
      expect(header.blocksInImage).toBe(8);
      const used = [...map].filter((e) => e !== BLOCK_FREE);
      expect(header.blocksAllocated).toBe(used.length);
      expect(result.blocksAllocated).toBe(used.length);
      if (name === 'dynamic') expect(used).toEqual(used.map((_, i) => i));
      else expect([...map]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);

      const file = await FileDevice.open(out);
      try {
        const vdi = await openVdi(file);
        const plain = await FileDevice.open(src);
        expect(await deviceHash(vdi, size)).toBe(await deviceHash(plain));
        await plain.close();
        expect(await zeroTail(vdi, size)).toBe(true);
      } finally {
        await file.close();
      }
    });
  }

  it('dynamic: stores only blocks with non-zero data', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    const src = dir.file('blocks.raw');
    const out = dir.file('blocks.vdi');
    const fs = await import('node:fs/promises');
    const fh = await fs.open(src, 'w');
    await fh.truncate(5 * MIB);
    await fh.write(new Uint8Array(100).fill(3), 0, 100, MIB + 7);
    await fh.write(new Uint8Array(MIB), 0, MIB, 3 * MIB); // explicit zeros
    await fh.close();
    const result = await writeWith(src, out, {});
    expect(result.blocksAllocated).toBe(1);
    const { header, map } = await headerOf(out);
    expect([...map]).toEqual([BLOCK_FREE, 0, BLOCK_FREE, BLOCK_FREE, BLOCK_FREE]);
    expect((await fs.stat(out)).size).toBe(header.offData + MIB);
    expect((await run('qemu-img', ['check', '-f', 'vdi', out])).stdout).toContain('No errors were found');
  });

  it('fresh random UUIDs per image, RTUUID byte order, reproducible with uuid=', async () => {
    const src = dir.file('u.raw');
    await writeSparseImage(src, 2 * MIB, 9);
    await writeWith(src, dir.file('u1.vdi'), {});
    await writeWith(src, dir.file('u2.vdi'), {});
    const a = (await headerOf(dir.file('u1.vdi'))).header;
    const b = (await headerOf(dir.file('u2.vdi'))).header;
    const ids = [a.uuidCreate, a.uuidModify, b.uuidCreate, b.uuidModify].map(rtuuidToString);
    expect(new Set(ids).size).toBe(4);

    const uuid = '01234567-89ab-cdef-0123-456789abcdef';
    await writeWith(src, dir.file('u3.vdi'), { uuid });
    await writeWith(src, dir.file('u4.vdi'), { uuid });
    expect(await sha256File(dir.file('u3.vdi'))).toBe(await sha256File(dir.file('u4.vdi')));
    const { head, header } = await headerOf(dir.file('u3.vdi'));
    expect(Buffer.from(head.subarray(0x188, 0x198)).toString('hex')).toBe('67452301ab89efcd0123456789abcdef');
    expect(rtuuidToString(header.uuidCreate)).toBe(uuid);
    expect(rtuuidToString(header.uuidModify)).not.toBe(uuid);
  });
});

describe('VDI reader against images made by qemu-img convert', () => {
  for (const [name, args, seed] of [['dynamic', [], 11], ['static', ['-o', 'static=on'], 12]] as const) {
    it(`${name}: reads back byte-identical, map covers all data`, async (ctx) => {
      requireTools(ctx, 'qemu-img');
      const src = dir.file(`q${seed}.raw`);
      const out = dir.file(`q${seed}.vdi`);
      const layout = await writeSparseImage(src, 6 * MIB + 3 * 512, seed);
      const size = 10 * MIB + 3 * 512; // a hole at the end: unallocated blocks for sure
      await truncate(src, size);
      await run('qemu-img', ['convert', '-f', 'raw', '-O', 'vdi', ...args, src, out]);
      const file = await FileDevice.open(out);
      try {
        const vdi = await openVdi(file);
        expect(vdi.size).toBe(size);
        expect(vdi.subformat).toBe(name === 'static' ? 'fixed' : 'dynamic');
        const plain = await FileDevice.open(src);
        expect(await deviceHash(vdi)).toBe(await deviceHash(plain));
        await plain.close();
        const map = await collectExtents(vdi);
        expect(map.reduce((s, e) => s + e.length, 0)).toBe(size);
        expect(uncoveredData(layout, map)).toEqual([]);
        if (name === 'dynamic') expect(map.some((e) => e.kind === 'unallocated')).toBe(true);
      } finally {
        await file.close();
      }
    });
  }

  it('probe recognises qemu-made and amitrans-made VDIs', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    const src = dir.file('p.raw');
    await writeSparseImage(src, 3 * MIB, 21);
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'vdi', '-o', 'static=on', src, dir.file('p1.vdi')]);
    await writeWith(src, dir.file('p2.vdi'), {});
    for (const [f, sub] of [['p1.vdi', 'fixed'], ['p2.vdi', 'dynamic']] as const) {
      const file = await FileDevice.open(dir.file(f));
      const head = new Uint8Array(4096);
      await file.read(head, 0);
      expect(vdiDriver.probe({ head, tail: head, size: file.size })).toEqual({ format: 'vdi', subformat: sub, virtualSize: 3 * MIB });
      await file.close();
    }
    expect(vdiDriver.probe({ head: new Uint8Array(4096), tail: new Uint8Array(0), size: 4096 })).toBeUndefined();
  });
});
