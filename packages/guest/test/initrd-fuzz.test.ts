import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageError } from '@amitrans/block';
import { hasTool, prng, requireTools, tmpDir, type TmpDir } from '@amitrans/testkit';
import { readInitrd } from '../src/initrd/index.js';
import { TOOLS, compress, concat, cpioOf, type Tool } from './initrd-fixtures.js';

let tmp: TmpDir;
const bases = new Map<string, Buffer>();

const TREE = {
  init: '#!/bin/nash\ninsmod /lib/xenblk.ko\nmodprobe virtio_blk\n',
  'lib/xenblk.ko': 'ko',
  'lib/modules/5.4.0/kernel/virtio_blk.ko.xz': 'xz',
  'lib/modules/5.4.0/modules.dep': 'kernel/virtio_blk.ko.xz:\n',
  'etc/modules': 'virtio_net\n',
  'bin/sh': { link: 'busybox' },
  'conf/initramfs.conf': 'MODULES=most\n',
};

beforeAll(async () => {
  tmp = await tmpDir('amitrans-initrd-fuzz-');
  if (!hasTool('cpio')) return;
  const early = await cpioOf(tmp.path, 'early', { 'kernel/x86/microcode/GenuineIntel.bin': 'mc' });
  const main = await cpioOf(tmp.path, 'main', TREE);
  const crc = await cpioOf(tmp.path, 'crc', TREE, 'crc');
  bases.set('newc', await readFile(main));
  bases.set('crc', await readFile(crc));
  const tools: Tool[] = ['gzip', 'zstd', 'lz4', 'xz', 'bzip2', 'lzma'];
  for (const tool of tools) {
    if (!hasTool(TOOLS[tool])) continue;
    bases.set(tool, await concat(join(tmp.path, `fuzz-${tool}.img`), [early, await compress(main, tool)]));
  }
});
afterAll(async () => {
  await tmp.remove();
});

type Rnd = ReturnType<typeof prng>;

function mutate(base: Buffer, rnd: Rnd): Buffer {
  const b = Buffer.from(base);
  const op = rnd.int(0, 5);
  if (op === 0) {
    for (let n = rnd.int(1, 8); n > 0; n--) b[rnd.int(0, b.length - 1)] = rnd.int(0, 255);
    return b;
  }
  if (op === 1) {
    const at = rnd.int(0, b.length - 1);
    b.set(rnd.bytes(Math.min(16, b.length - at)), at);
    return b;
  }
  if (op === 2) return b.subarray(0, rnd.int(0, b.length));
  if (op === 3) {
    const at = rnd.int(0, b.length);
    const from = rnd.int(0, b.length - 1);
    return Buffer.concat([b.subarray(0, at), b.subarray(from, from + rnd.int(1, 600)), b.subarray(at)]);
  }
  if (op === 4) {
    // A header field of a cpio member set to random hex digits (sizes, name lengths, modes).
    const magics: number[] = [];
    for (let i = b.indexOf('0707'); i !== -1; i = b.indexOf('0707', i + 1)) magics.push(i);
    if (magics.length === 0) return mutate(base, rnd);
    const at = magics[rnd.int(0, magics.length - 1)]! + 6 + 8 * rnd.int(0, 12);
    const digits = rnd.next() < 0.5 ? 'ffffffff' : Array.from({ length: 8 }, () => '0123456789abcdef'[rnd.int(0, 15)]).join('');
    if (at + 8 <= b.length) b.write(digits, at, 'latin1');
    return b;
  }
  const at = rnd.int(0, b.length - 1);
  b.fill(rnd.next() < 0.5 ? 0 : 0xff, at, Math.min(b.length, at + rnd.int(1, 64)));
  return b;
}

async function fuzz(name: string, iterations: number, seed: number): Promise<{ ok: number; errors: number }> {
  const base = bases.get(name);
  if (base === undefined) throw new Error(`no base fixture ${name}`);
  const rnd = prng(seed);
  let ok = 0;
  let errors = 0;
  for (let i = 0; i < iterations; i++) {
    const input = mutate(base, rnd);
    const started = Date.now();
    try {
      const c = await readInitrd(input, { maxDecompressedBytes: 64 * 1024 * 1024 });
      expect(Array.isArray(c.entries) && Array.isArray(c.warnings) && Array.isArray(c.segments)).toBe(true);
      expect(c.warnings.length).toBeLessThanOrEqual(101);
      for (const e of c.entries) expect(e.path.startsWith('/') && !e.path.split('/').includes('..')).toBe(true);
      ok++;
    } catch (err) {
      if (!(err instanceof ImageError)) {
        throw new Error(`${name} mutation ${i} (seed ${seed}) threw ${String(err)}`, { cause: err });
      }
      errors++;
    }
    const took = Date.now() - started;
    if (took > 5000) throw new Error(`${name} mutation ${i} (seed ${seed}) took ${took} ms`);
  }
  return { ok, errors };
}

describe('fuzz: mutated real initrds give contents or an ImageError, never another exception', () => {
  const plan: [string, number, string][] = [
    ['newc', 1500, 'cpio'],
    ['crc', 500, 'cpio'],
    ['gzip', 1500, 'gzip'],
    ['zstd', 600, 'zstd'],
    ['lz4', 1000, 'lz4'],
    // 7-Zip runs as a process per segment: fewer rounds.
    ['xz', 40, 'xz'],
    ['bzip2', 40, 'bzip2'],
    ['lzma', 40, 'xz'],
  ];
  for (const [name, iterations, tool] of plan) {
    it(`${name}: ${iterations} mutations`, async (ctx) => {
      requireTools(ctx, 'cpio', tool);
      const { ok, errors } = await fuzz(name, iterations, 1000 + name.length * 31 + iterations);
      console.log(`${name}: ${ok} partial or whole results, ${errors} ImageErrors`);
      // Most mutations leave something readable: partial results, not blanket refusals.
      expect(ok).toBeGreaterThan(iterations / 4);
      expect(ok + errors).toBe(iterations);
    });
  }
});
