import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageError } from '@amitrans/block';
import { prng, requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import { chooseRewriteCompression, readInitrd, rewriteInitrd, sourceFromBytes, writeNewcArchive, type NewcMember } from '../src/initrd/index.js';
import { compress, concat, cpioOf } from './initrd-fixtures.js';

let tmp: TmpDir;
beforeAll(async () => {
  tmp = await tmpDir('amitrans-rewrite-');
});
afterAll(async () => {
  await tmp.remove();
});

const TREE = {
  init: '#!/bin/sh\n# initramfs-tools init\n',
  'conf/modules': 'xen-blkfront\n',
  'conf/initramfs.conf': 'MODULES=list\n',
  'usr/lib/modules/6.1.0/kernel/drivers/block/xen-blkfront.ko': 'xen',
  'bin/sh': { link: 'busybox' },
};
const enc = new TextEncoder();
const ADD: NewcMember[] = [
  { path: 'usr/lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko', type: 'file', data: enc.encode('virtio') },
  { path: 'usr/lib/modules/6.1.0/kernel/drivers/virtio/virtio.ko', type: 'file', data: enc.encode('v') },
  { path: 'conf/modules', type: 'file', data: enc.encode('xen-blkfront\nvirtio_blk\n') },
];

async function rewrite(bytes: Uint8Array, members = ADD): Promise<{ out: Uint8Array; kept: number }> {
  const c = await readInitrd(bytes);
  const last = c.segments[c.segments.length - 1]!;
  const r = await rewriteInitrd(sourceFromBytes(bytes), c, members, { compression: chooseRewriteCompression(last.compression, undefined)!, maxOutput: 1 << 24 });
  return { out: r.bytes, kept: r.kept };
}

describe('rewriting the main archive so lsinitramfs lists what was added', () => {
  it('an early microcode cpio stays in front byte for byte; an xz main archive becomes gzip; each file once; unmkinitramfs extracts the new files', async (ctx) => {
    requireTools(ctx, 'cpio', 'xz', 'lsinitramfs', 'unmkinitramfs');
    const early = await cpioOf(tmp.path, 'early', { 'kernel/x86/microcode/GenuineIntel.bin': 'microcode' });
    const main = await cpioOf(tmp.path, 'main', TREE);
    const earlyBytes = await readFile(early);
    const original = await concat(join(tmp.path, 'orig.img'), [early, await compress(main, 'xz')]);
    const { out, kept } = await rewrite(original);
    expect(kept).toBe((await readInitrd(original)).segments[1]!.offset);
    expect(kept).toBeGreaterThanOrEqual(earlyBytes.length);
    expect(Buffer.compare(Buffer.from(out.subarray(0, kept)), original.subarray(0, kept))).toBe(0);
    const after = await readInitrd(out);
    expect(after.segments.map((s) => s.compression)).toEqual(['none', 'gzip']);
    const img = join(tmp.path, 'new.img');
    await writeFile(img, out);
    const list = (await run('lsinitramfs', [img])).stdout.split('\n');
    expect(list).toContain('kernel/x86/microcode/GenuineIntel.bin');
    for (const p of ['usr/lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko', 'usr/lib/modules/6.1.0/kernel/drivers/virtio/virtio.ko', 'usr/lib/modules/6.1.0/kernel/drivers/block/xen-blkfront.ko', 'init', 'bin/sh']) {
      expect(list.filter((l) => l === p), p).toEqual([p]);
    }
    // conf/modules once, and it is the new one; the parent directory of virtio.ko was added once.
    expect(list.filter((l) => l === 'conf/modules')).toHaveLength(1);
    expect(list.filter((l) => l === 'usr/lib/modules/6.1.0/kernel/drivers/virtio')).toHaveLength(1);
    const x = join(tmp.path, 'x');
    await run('unmkinitramfs', [img, x]);
    expect(await readFile(join(x, 'main/conf/modules'), 'utf8')).toBe('xen-blkfront\nvirtio_blk\n');
    expect(await readFile(join(x, 'main/usr/lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko'), 'utf8')).toBe('virtio');
    expect(await readFile(join(x, 'early/kernel/x86/microcode/GenuineIntel.bin'), 'utf8')).toBe('microcode');
  });

  it('an uncompressed initrd stays uncompressed; a kernel without RD_GZIP gets no rewrite of a compressed one', async () => {
    const plain = writeNewcArchive([{ path: 'init', type: 'file', data: enc.encode('#!/bin/sh\n') }]);
    const { out, kept } = await rewrite(plain);
    expect(kept).toBe(0);
    const c = await readInitrd(out);
    expect(c.segments.map((s) => s.compression)).toEqual(['none']);
    expect(c.entries.map((e) => e.path)).toEqual(expect.arrayContaining(['/init', '/conf/modules', '/usr/lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko']));
    expect(chooseRewriteCompression('zstd', new Map([['RD_ZSTD', 'y']]))).toBeUndefined();
    expect(chooseRewriteCompression('zstd', new Map([['RD_GZIP', 'y']]))).toBe('gzip');
  });

  it('the output is bounded: more than maxOutput is an ImageError', async () => {
    const bytes = gzipSync(writeNewcArchive([{ path: 'init', type: 'file', data: new Uint8Array(4096) }]));
    const c = await readInitrd(bytes);
    await expect(rewriteInitrd(sourceFromBytes(bytes), c, ADD, { compression: 'gzip', maxOutput: 64 })).rejects.toBeInstanceOf(ImageError);
    const none = writeNewcArchive([{ path: 'init', type: 'file', data: new Uint8Array(4096) }]);
    await expect(rewriteInitrd(sourceFromBytes(none), await readInitrd(none), ADD, { compression: 'none', maxOutput: 1000 })).rejects.toThrow(/larger than 1000 bytes/);
  });

  it('fuzz: mutated archives rewrite or give an ImageError, never another exception', async () => {
    const base = writeNewcArchive(Object.entries(TREE).map(([path, v]) => (typeof v === 'string' ? { path, type: 'file' as const, data: enc.encode(v) } : { path, type: 'symlink' as const, linkTarget: v.link })));
    const rnd = prng(4242);
    let ok = 0;
    for (let i = 0; i < 800; i++) {
      const b = Buffer.from(base);
      const op = rnd.int(0, 2);
      if (op === 0) for (let n = rnd.int(1, 6); n > 0; n--) b[rnd.int(0, b.length - 1)] = rnd.int(0, 255);
      else if (op === 1) b.write(rnd.next() < 0.5 ? 'ffffffff' : '0000ffff', 6 + 8 * rnd.int(0, 12) + (rnd.next() < 0.5 ? 0 : b.indexOf('070701', 8)), 'latin1');
      const input = op === 2 ? b.subarray(0, rnd.int(0, b.length)) : b;
      const gz = rnd.next() < 0.5 ? gzipSync(input) : input;
      try {
        const c = await readInitrd(gz);
        await rewriteInitrd(sourceFromBytes(gz), c, ADD, { compression: 'gzip', maxOutput: 1 << 20, maxDecompressed: 1 << 20 });
        ok++;
      } catch (err) {
        if (!(err instanceof ImageError)) throw new Error(`mutation ${i} threw ${String(err)}`, { cause: err });
      }
    }
    expect(ok).toBeGreaterThan(50);
  });
});
