import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageError } from '@amitrans/block';
import { prng, requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import { writeNewcArchive, type NewcMember } from '../src/initrd/cpiowriter.js';
import { closure, parseModulesDep, parseSoftdeps } from '../src/initrd/depmod.js';
import { readKmodIndex, writeKmodIndex, type IndexEntry } from '../src/initrd/kmodindex.js';
import { readInitrd } from '../src/initrd/index.js';
import { zstdStored } from '../src/initrd/encoders.js';

let tmp: TmpDir;
beforeAll(async () => {
  tmp = await tmpDir('amitrans-kmod-fuzz-');
});
afterAll(async () => {
  await tmp.remove();
});

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz_-:*?[]0123456789';

function randomEntries(seed: number): IndexEntry[] {
  const rnd = prng(seed);
  const words = Array.from({ length: rnd.int(1, 12) }, () => Array.from({ length: rnd.int(0, 10) }, () => ALPHABET[rnd.int(0, ALPHABET.length - 1)]).join(''));
  return Array.from({ length: rnd.int(1, 60) }, () => ({
    key: words[rnd.int(0, words.length - 1)]! + (rnd.int(0, 1) ? words[rnd.int(0, words.length - 1)]! : ''),
    value: words[rnd.int(0, words.length - 1)]!,
    priority: rnd.int(0, 5),
  }));
}

const key = (e: IndexEntry): string => `${e.key}\0${e.value}`;

describe('kmod index: property and fuzz', () => {
  it('round-trips random key sets (shared prefixes, empty keys, duplicates dropped)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const entries = randomEntries(seed);
      const unique = new Map(entries.map((e) => [key(e), e]));
      // First insertion of a (key, value) wins, as in depmod.
      const firsts = new Map<string, IndexEntry>();
      for (const e of entries) if (!firsts.has(key(e))) firsts.set(key(e), e);
      const back = readKmodIndex(writeKmodIndex(entries));
      expect(back.length).toBe(unique.size);
      expect(new Map(back.map((e) => [key(e), e]))).toEqual(firsts);
    }
  });

  it('mutated indexes give an ImageError or entries, never a crash or a hang', () => {
    const base = writeKmodIndex(randomEntries(7).concat(randomEntries(8)));
    const rnd = prng(99);
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(base);
      const op = rnd.int(0, 2);
      if (op === 0) for (let n = rnd.int(1, 6); n > 0; n--) b[rnd.int(0, b.length - 1)] = rnd.int(0, 255);
      else if (op === 1) b.writeUInt32BE(rnd.int(0, 0xffffffff), rnd.int(0, (b.length >> 2) - 1) * 4);
      const input = op === 2 ? b.subarray(0, rnd.int(0, b.length)) : b;
      try {
        const out = readKmodIndex(input);
        expect(out.length).toBeLessThanOrEqual(input.length);
      } catch (err) {
        expect(err).toBeInstanceOf(ImageError);
      }
    }
  });

  it('a hostile index whose children all point at one node is refused, not expanded', () => {
    // 30 levels of nodes each with 100 children sharing one grandchild: 100^30 paths.
    const parts: Buffer[] = [Buffer.from([0xb0, 0x07, 0xf4, 0x57, 0, 2, 0, 1, 0, 0, 0, 0])];
    let at = 12;
    let ref = 0;
    for (let level = 0; level < 30; level++) {
      const node = Buffer.alloc(2 + 100 * 4);
      node[0] = 0x20;
      node[1] = 0x20 + 99;
      for (let c = 0; c < 100; c++) node.writeUInt32BE(level === 0 ? 0 : ref, 2 + c * 4);
      ref = (0x20000000 | at) >>> 0;
      parts.push(node);
      at += node.length;
    }
    const buf = Buffer.concat(parts);
    buf.writeUInt32BE(ref, 8);
    expect(() => readKmodIndex(buf)).toThrow(ImageError);
  });

  it('modules.dep parsing: random text gives lines or an ImageError; closure terminates on cycles', () => {
    const rnd = prng(5);
    for (let i = 0; i < 500; i++) {
      const text = Array.from({ length: rnd.int(0, 20) }, () => Array.from({ length: rnd.int(0, 30) }, () => 'ab.ko: /#\n\0x'[rnd.int(0, 13)]).join('')).join('\n');
      try {
        const lines = parseModulesDep(text);
        closure(lines, lines.map((l) => l.name), parseSoftdeps(text));
      } catch (err) {
        expect(err).toBeInstanceOf(ImageError);
      }
    }
    const cyc = parseModulesDep('a.ko: b.ko\nb.ko: a.ko\n');
    expect(closure(cyc, ['a']).order.map((l) => l.name).sort()).toEqual(['a', 'b']);
  });
});

describe('newc writer (cpio and our reader as oracles)', () => {
  it('writes archives cpio lists and extracts, with parents, symlinks and modes', async (ctx) => {
    requireTools(ctx, 'cpio', 'zstd');
    const rnd = prng(3);
    const members: NewcMember[] = [
      { path: 'lib/modules/6.1/kernel/a.ko', type: 'file', data: rnd.bytes(1001) },
      { path: '/init', type: 'file', mode: 0o755, data: new TextEncoder().encode('#!/bin/sh\n') },
      { path: 'bin/sh', type: 'symlink', linkTarget: 'busybox' },
      { path: 'etc/empty', type: 'file' },
      { path: 'var/run', type: 'directory', mode: 0o700 },
    ];
    const archive = writeNewcArchive(members);
    const file = join(tmp.path, 'a.cpio');
    await writeFile(file, archive);
    const listed = (await run('sh', ['-c', `cpio -tv --quiet < "${file}"`])).stdout;
    for (const p of ['lib', 'lib/modules', 'lib/modules/6.1/kernel/a.ko', 'init', 'bin/sh -> busybox', 'etc/empty', 'var/run']) expect(listed).toContain(p);
    expect(listed).toMatch(/-rwxr-xr-x .* init/);
    expect(listed).toMatch(/drwx------ .* var\/run/);
    const contents = await readInitrd(archive);
    expect(contents.warnings).toEqual([]);
    expect(contents.entries.find((e) => e.path === '/lib/modules/6.1/kernel/a.ko')?.size).toBe(1001);
    // The stored zstd frame decodes with the real zstd to the same bytes.
    const z = join(tmp.path, 'a.cpio.zst');
    await writeFile(z, zstdStored(archive));
    const back = await run('sh', ['-c', `zstd -dc < "${z}" | cpio -t --quiet`]);
    expect(back.stdout).toContain('lib/modules/6.1/kernel/a.ko');
    expect((await readInitrd(zstdStored(archive))).entries.length).toBe(contents.entries.length);
  });
});
