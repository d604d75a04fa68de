import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDevice, ImageError } from '@amitrans/block';
import { prng, requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import { readInitrd, sourceFromBlockDevice, type InitrdContents } from '../src/initrd/index.js';
import { compress, cpioOf, newc } from './initrd-fixtures.js';

let tmp: TmpDir;
beforeAll(async () => {
  tmp = await tmpDir('amitrans-initrd-hostile-');
});
afterAll(async () => {
  await tmp.remove();
});

const INIT = { name: 'init', data: '#!/bin/nash\ninsmod /lib/xenblk.ko\n' };

async function rejects(p: Promise<unknown>): Promise<ImageError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ImageError);
    return err as ImageError;
  }
  throw new Error('expected an ImageError');
}

async function fromFile(path: string, options = {}): Promise<InitrdContents> {
  const device = await FileDevice.open(path);
  try {
    return await readInitrd(sourceFromBlockDevice(device), options);
  } finally {
    await device.close();
  }
}

/** A zstd frame written by hand: raw blocks for `before` and `after`, RLE blocks of zeros between. */
function zstdZeros(before: Uint8Array, zeros: number, after: Uint8Array): Buffer {
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (17 - 10) << 3])];
  const header = (size: number, type: number, last: boolean): Buffer => {
    const v = (size << 3) | (type << 1) | (last ? 1 : 0);
    return Buffer.from([v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff]);
  };
  parts.push(header(before.length, 0, false), Buffer.from(before));
  for (let left = zeros; left > 0; left -= 128 * 1024) parts.push(header(Math.min(left, 128 * 1024), 1, false), Buffer.from([0]));
  parts.push(header(after.length, 0, true), Buffer.from(after));
  return Buffer.concat(parts);
}

describe('hostile names and headers', () => {
  it('names with .. and absolute names are listed normalised, with warnings', async () => {
    const c = await readInitrd(
      newc([
        INIT,
        { name: '../../etc/passwd', data: 'root::0:0::/:/bin/sh\n' },
        { name: '/abs/file', data: 'x' },
        { name: './a/../../b', data: '' },
        { name: 'a/./b//c', data: 'y' },
        { name: '..', mode: 0o040755 },
      ]),
    );
    expect(c.entries.map((e) => e.path)).toEqual(['/init', '/etc/passwd', '/abs/file', '/b', '/a/b/c', '/']);
    expect(c.warnings.some((w) => w.includes('../../etc/passwd') && w.includes('climbing'))).toBe(true);
    expect(c.warnings.some((w) => w.includes('/abs/file') && w.includes('absolute'))).toBe(true);
    expect(c.flavour).toBe('nash');
    expect(c.incomplete).toBe(false);
  });

  it('deep nesting is fine; a name longer than PATH_MAX ends the archive with a warning', async () => {
    const deep = 'a/'.repeat(2000) + 'f';
    const c = await readInitrd(newc([INIT, { name: deep, data: 'z' }, { name: 'b/'.repeat(2100) + 'g', data: 'z' }, { name: 'after' }]));
    expect(c.entries.map((e) => e.path)).toEqual(['/init', '/' + deep]);
    expect(c.warnings.some((w) => w.includes('name of 4202 bytes'))).toBe(true);
    expect(c.incomplete).toBe(true);
  });

  it('an absurd file size or name size gives partial contents, not an exception', async () => {
    const big = Buffer.concat([newc([INIT, { name: 'huge', claimedSize: 0xffffffff, data: 'abc' }], false)]);
    const c = await readInitrd(big);
    expect(c.entries.map((e) => [e.path, e.size])).toEqual([
      ['/init', INIT.data.length],
      ['/huge', 0xffffffff],
    ]);
    expect(c.warnings.some((w) => w.includes('truncated'))).toBe(true);
    expect(c.incomplete).toBe(true);
    const badName = await readInitrd(newc([INIT, { name: 'x', nameSize: 0xffffffff }]));
    expect(badName.entries.map((e) => e.path)).toEqual(['/init']);
    expect(badName.warnings.some((w) => w.includes('4294967295'))).toBe(true);
    const notHex = newc([INIT, { name: 'x' }]);
    notHex.write('zzzzzzzz', 110 + 8 + INIT.name.length + 3 + ((4 - ((110 + 5 + INIT.data.length) % 4)) % 4) + INIT.data.length + 6 + 8, 'latin1');
    const c3 = await readInitrd(notHex);
    expect(c3.entries.map((e) => e.path)).toEqual(['/init']);
    expect(c3.warnings.some((w) => w.includes('corrupt cpio header'))).toBe(true);
  });

  it('zero-length files and members, garbage after the trailer', async () => {
    const archive = newc([INIT, { name: 'etc/modules', data: '' }, { name: 'empty' }]);
    const garbage = Buffer.concat([archive, Buffer.alloc(512), Buffer.from('this is not an archive at all')]);
    const c = await readInitrd(garbage);
    expect(c.entries.map((e) => [e.path, e.size])).toEqual([
      ['/init', INIT.data.length],
      ['/etc/modules', 0],
      ['/empty', 0],
    ]);
    expect(c.moduleLists.find((l) => l.path === '/etc/modules')).toEqual({ path: '/etc/modules', kind: 'etc-modules', modules: [] });
    expect(c.warnings.some((w) => w.includes(`at byte ${archive.length + 512}`))).toBe(true);
    // Junk after the trailer inside a compressed stream.
    const inside = await readInitrd(gzipSync(Buffer.concat([archive, Buffer.from('JUNKJUNK')])));
    expect(inside.entries).toHaveLength(3);
    expect(inside.warnings.some((w) => w.includes('not a cpio archive') && w.includes('4a 55 4e 4b'))).toBe(true);
  });

  it('nothing readable is an ImageError', async () => {
    expect((await rejects(readInitrd(new Uint8Array(0)))).code).toBe('E_TRUNCATED');
    expect((await rejects(readInitrd(new Uint8Array(4096)))).code).toBe('E_CORRUPT');
    expect((await rejects(readInitrd(prng(1).bytes(5000)))).code).toBe('E_UNKNOWN_FORMAT');
    expect((await rejects(readInitrd(gzipSync(prng(2).bytes(5000))))).code).toBe('E_CORRUPT');
    expect((await rejects(readInitrd(Buffer.from([0x89, 0x4c, 0x5a, 0x4f, 0, 0x0d, 0x0a, 0x1a, 0x0a])))).code).toBe('E_UNSUPPORTED');
    // A zstd frame asking for a 2 GiB window is refused before anything is allocated.
    const zstd = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (31 - 10) << 3, 1, 0, 0]);
    expect((await rejects(readInitrd(zstd))).message).toMatch(/window/);
  });

  it('the member limit stops listing with a warning', async () => {
    const members = Array.from({ length: 50 }, (_, i) => ({ name: `f${i}`, data: 'x' }));
    const c = await readInitrd(newc(members), { maxEntries: 10 });
    expect(c.entries).toHaveLength(10);
    expect(c.incomplete).toBe(true);
    expect(c.warnings).toContain('stopped listing after 10 members');
  });

  it('an old-style ext2 initrd image is recognised, not listed', async (ctx) => {
    requireTools(ctx, 'mkfs.ext2', 'gzip');
    const img = join(tmp.path, 'old-initrd.img');
    await run('mkfs.ext2', ['-q', '-F', img, '256']);
    for (const file of [img, await compress(img, 'gzip')]) {
      const c = await readInitrd(await readFile(file));
      expect(c.segments[0]!.archive).toBe('ext2');
      expect(c.entries).toEqual([]);
      expect(c.warnings.some((w) => w.includes('ext2'))).toBe(true);
    }
  });
});

describe('damaged and oversized initrds', () => {
  // Incompressible files so that a cut in the compressed data falls between members.
  const rnd = prng(7);
  const tree = {
    init: '#!/bin/sh\n. /scripts/functions\n',
    'conf/initramfs.conf': 'MODULES=most\n',
    'lib/modules/6.1.0/kernel/a.ko': rnd.bytes(200_000),
    'lib/modules/6.1.0/kernel/b.ko': rnd.bytes(200_000),
    'lib/modules/6.1.0/kernel/c.ko': rnd.bytes(200_000),
    'lib/modules/6.1.0/kernel/d.ko': rnd.bytes(200_000),
  };
  for (const tool of ['gzip', 'xz', 'zstd', 'bzip2', 'lz4'] as const) {
    it(`a truncated ${tool} initrd gives partial contents and a warning`, async (ctx) => {
      // (a cut inside the only block of a bzip2 or lz4 stream leaves nothing: an ImageError, tested by the fuzz)
      requireTools(ctx, 'cpio', tool === 'xz' ? 'xz' : tool);
      // bzip2 and lz4 decode whole blocks only (900 kB and 8 MiB): use 100 kB bzip2
      // blocks, and give lz4 a second block, so that a cut leaves whole blocks in front.
      const cpio = await cpioOf(tmp.path, `trunc-${tool}`, tool === 'lz4' ? { ...tree, 'z/big': rnd.bytes(9 * 1024 * 1024) } : tree);
      let compressed: string;
      if (tool === 'bzip2') {
        compressed = `${cpio}.bz2`;
        await run('sh', ['-c', `bzip2 -1 -c < "${cpio}" > "${compressed}"`]);
      } else {
        compressed = await compress(cpio, tool);
      }
      const full = await readFile(compressed);
      const c = await readInitrd(full.subarray(0, Math.floor(full.length * (tool === 'lz4' ? 0.9 : 0.7))));
      expect(c.incomplete).toBe(true);
      expect(c.warnings.length).toBeGreaterThan(0);
      expect(c.entries.map((e) => e.path)).toContain('/init');
      expect(c.flavour).toBe('initramfs-tools');
      expect(c.warnings.join('\n')).toMatch(/truncated|damaged/);
    });
  }

  it('a 2 GiB uncompressed initrd (sparse file) is listed without reading its data', async () => {
    const path = join(tmp.path, 'sparse-2g.img');
    const head = newc([INIT, { name: 'lib/modules/5.10.0/big.ko', claimedSize: 0x7fffffff }], false);
    const tail = newc([]);
    const dataEnd = head.length + 0x7fffffff;
    const fh = await open(path, 'w');
    await fh.write(head, 0, head.length, 0);
    await fh.write(tail, 0, tail.length, dataEnd + ((4 - (dataEnd % 4)) % 4));
    await fh.close();
    const started = Date.now();
    const c = await fromFile(path);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(c.entries.map((e) => [e.path, e.size])).toEqual([
      ['/init', INIT.data.length],
      ['/lib/modules/5.10.0/big.ko', 0x7fffffff],
    ]);
    expect(c.moduleNames).toEqual(['big']);
    expect(c.warnings).toEqual([]);
    expect(c.size).toBeGreaterThan(2 ** 31);
  });

  it('a compressed member claiming 2 GiB that is not there is a truncation warning', async () => {
    const c = await readInitrd(gzipSync(newc([INIT, { name: 'big', claimedSize: 0x7fffffff, data: 'abc' }], false)));
    expect(c.entries.map((e) => e.path)).toEqual(['/init', '/big']);
    expect(c.warnings.some((w) => w.includes('truncated'))).toBe(true);
  });

  it('a decompression bomb stops at the default 1 GiB limit with a warning', async () => {
    const before = newc([INIT, { name: 'bomb', claimedSize: 0x7fffffff }], false);
    const bomb = zstdZeros(before, 0x7fffffff, newc([]));
    expect(bomb.length).toBeLessThan(100_000);
    const path = join(tmp.path, 'bomb.zst');
    await writeFile(path, bomb);
    const started = Date.now();
    const c = await fromFile(path);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(c.entries.map((e) => e.path)).toEqual(['/init', '/bomb']);
    expect(c.incomplete).toBe(true);
    expect(c.warnings.some((w) => w.includes('stopped after 1073741824 decompressed bytes'))).toBe(true);
    expect(c.segments[0]!.decompressedBytes).toBe(1024 ** 3);
  });

  it('a smaller limit applies to gzip too, and stops reading the segments after it', async () => {
    const before = newc([INIT, { name: 'zeros', claimedSize: 64 * 1024 * 1024 }], false);
    const body = Buffer.concat([before, Buffer.alloc(64 * 1024 * 1024), newc([])]);
    const file = Buffer.concat([gzipSync(body, { level: 1 }), gzipSync(newc([{ name: 'later' }]))]);
    const c = await readInitrd(file, { maxDecompressedBytes: 16 * 1024 * 1024 });
    expect(c.entries.map((e) => e.path)).toEqual(['/init', '/zeros']);
    expect(c.segments).toHaveLength(1);
    expect(c.warnings.some((w) => w.includes('stopped after 16777216 decompressed bytes'))).toBe(true);
    const all = await readInitrd(file);
    expect(all.entries.map((e) => e.path)).toEqual(['/init', '/zeros', '/later']);
    expect(all.warnings).toEqual([]);
  });
});
