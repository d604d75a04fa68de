import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, open, readdir, stat, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  qemuImgCompare,
  qemuImgInfo,
  requireTools,
  run,
  sha256File,
  tmpDir,
  writeSparseImage,
  type TmpDir,
} from '@amitrans/testkit';
import { binary, cli, runBin } from './helpers.js';


let dir: TmpDir;
let src: string;
const SIZE = 9 * 1024 * 1024 + 3 * 512; // not a multiple of 1 MiB

beforeAll(async () => {
  dir = await tmpDir();
  src = dir.file('src.raw');
  await writeSparseImage(src, SIZE, 2024);
});
afterAll(async () => {
  await dir.remove();
});



describe('amitrans convert: every writable format, checked by qemu-img', () => {
  const cases: [string, string, string[], string][] = [
    ['raw', 'raw', [], 'raw'],
    ['vhd dynamic', 'vhd', [], 'vpc'],
    ['vhd fixed', 'vhd', ['-o', 'subformat=fixed'], 'vpc'],
    ['vdi', 'vdi', [], 'vdi'],
    ['vmdk streamOptimized', 'vmdk', ['-o', 'subformat=streamOptimized'], 'vmdk'],
    ['vmdk monolithicSparse', 'vmdk', ['-o', 'subformat=monolithicSparse'], 'vmdk'],
    ['qcow2', 'qcow2', [], 'qcow2'],
    ['qcow2 compressed', 'qcow2', ['-o', 'compress=on'], 'qcow2'],
  ];
  for (const [name, fmt, opts, qemuFmt] of cases) {
    it(name, async (ctx) => {
      requireTools(ctx, 'qemu-img');
      const out = dir.file(`out-${name.replace(/\W+/g, '-')}.${fmt}`);
      const r = await cli('convert', src, out, '-O', fmt, ...opts, '--json');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const summary = JSON.parse(r.stdout) as { format: string; virtualSize: number; bytesRead: number };
      expect(summary.format).toBe(fmt);
      expect(await qemuImgCompare(src, 'raw', out, qemuFmt)).toBe(true);
      const info = await qemuImgInfo(out, qemuFmt);
      expect(info.format).toBe(qemuFmt);
      expect(info['virtual-size']).toBeGreaterThanOrEqual(SIZE);
      // No temporary file is left beside the output.
      expect((await readdir(dir.path)).filter((f) => f.endsWith('.partial'))).toEqual([]);
    });
  }

  it('a second conversion of the same input with the same options is byte-identical', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    for (const [fmt, opts] of [['vmdk', 'subformat=streamOptimized,cid=12345678'], ['qcow2', 'compress=on'], ['vdi', 'uuid=01234567-89ab-cdef-0123-456789abcdef']] as const) {
      // Same file name in two folders: a VMDK descriptor names its own file.
      await mkdir(dir.file('det-a'), { recursive: true });
      await mkdir(dir.file('det-b'), { recursive: true });
      const a = dir.file(`det-a/det.${fmt}`);
      const b = dir.file(`det-b/det.${fmt}`);
      expect((await cli('convert', src, a, '-o', opts)).code).toBe(0);
      expect((await cli('convert', src, b, '-o', opts)).code).toBe(0);
      expect(await sha256File(a), fmt).toBe(await sha256File(b));
    }
  });
});

describe('amitrans convert: inputs', () => {
  for (const [tool, ext] of [['gzip', 'gz'], ['bzip2', 'bz2'], ['xz', 'xz']] as const) {
    it(`reads a ${tool}-compressed raw image`, async (ctx) => {
      requireTools(ctx, tool, 'qemu-img');
      const c = dir.file(`in-${tool}.img`);
      await copyFile(src, c);
      await run(tool, ['-f', c]);
      const out = dir.file(`from-${tool}.qcow2`);
      const r = await cli('convert', `${c}.${ext}`, out);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(await qemuImgCompare(src, 'raw', out, 'qcow2')).toBe(true);
    });
  }
  it('reads a bzip2-compressed VHD (the CloudStack template form)', async (ctx) => {
    requireTools(ctx, 'bzip2', 'qemu-img');
    const vhd = dir.file('tmpl.vhd');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=dynamic,force_size=on', src, vhd]);
    await run('bzip2', ['-f', vhd]);
    const out = dir.file('tmpl.raw');
    const r = await cli('convert', `${vhd}.bz2`, out, '-O', 'raw');
    expect(r.code).toBe(0);
    expect(await qemuImgCompare(src, 'raw', out, 'raw')).toBe(true);
  });

  it("a sparse raw input's holes are never read: an 8 GiB ext4 converts reading only its allocated blocks", async (ctx) => {
    requireTools(ctx, 'mkfs.ext4', 'python3', 'qemu-img');
    const big = dir.file('sparse-8g.raw');
    await run('truncate', ['-s', '8G', big]);
    await run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=1,lazy_journal_init=1', big]);
    const allocated = (await stat(big)).blocks * 512;
    // Without holes in the input this test would prove nothing.
    expect(allocated).toBeLessThan(64 * 1024 * 1024);
    // qcow2 (the container writers' path) and raw (the copy path).
    for (const [fmt, qemuFmt] of [['qcow2', 'qcow2'], ['raw', 'raw']] as const) {
      const out = dir.file(`sparse-8g.out.${fmt}`);
      const r = await cli('convert', big, out, '-O', fmt, '--json');
      expect(r.code, r.stderr).toBe(0);
      // bytesRead counts what the writer read from the input: the data SEEK_DATA found, no hole.
      expect((JSON.parse(r.stdout) as { bytesRead: number }).bytesRead, fmt).toBeLessThanOrEqual(allocated);
      expect(await qemuImgCompare(big, 'raw', out, qemuFmt), fmt).toBe(true);
    }
  });
});

describe('amitrans convert: failures leave nothing behind', () => {
  it('a damaged compressed input: exit 1, error names the file, no output', async (ctx) => {
    requireTools(ctx, 'xz');
    const c = dir.file('bad.img');
    await copyFile(src, c);
    await run('xz', ['-f', c]);
    const fh = await open(`${c}.xz`, 'r+');
    const { size } = await fh.stat();
    await fh.truncate(Math.floor(size / 2));
    await fh.close();
    const out = dir.file('bad-out.raw');
    const r = await cli('convert', `${c}.xz`, out);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('bad.img.xz');
    expect(existsSync(out)).toBe(false);
    expect((await readdir(dir.path)).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });
  it('unknown formats and options are usage-level errors with the known list', async () => {
    const r = await cli('convert', src, dir.file('x.out'), '-O', 'vhdx');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown output format 'vhdx'.*qcow2/);
    const r2 = await cli('convert', src, dir.file('x.vhd'), '-o', 'colour=blue');
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/no option 'colour'/);
  });
  it('SIGINT during a conversion removes the partial output', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    const big = dir.file('big.raw');
    const fh = await open(big, 'w');
    const chunk = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < 48; i++) {
      for (let j = 0; j < chunk.length; j += 4096) chunk.writeUInt32LE(i * 100000 + j + 1, j);
      await fh.write(chunk, 0, chunk.length, i * chunk.length);
    }
    await fh.close();
    const out = dir.file('big.qcow2');
    const child = spawn(process.execPath, [binary(), 'convert', big, out, '-o', 'compress=on'], { stdio: 'ignore' });
    // Wait for the temporary output to appear, then interrupt.
    for (let i = 0; i < 200 && !(await readdir(dir.path)).some((f) => f.startsWith('.big.qcow2') && f.endsWith('.partial')); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(code).toBe(130);
    expect(existsSync(out)).toBe(false);
    expect((await readdir(dir.path)).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });
});

describe('amitrans convert: stdout', () => {
  it('streams raw and streamOptimized VMDK to stdout', async (ctx) => {
    requireTools(ctx, 'qemu-img');
    for (const [fmt, opts, qfmt] of [['raw', [], 'raw'], ['vmdk', ['-o', 'subformat=streamOptimized'], 'vmdk']] as const) {
      const out = dir.file(`stdout.${fmt}`);
      const r = await runBin(['convert', src, '-', '-O', fmt, ...opts], out);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(await qemuImgCompare(src, 'raw', out, qfmt)).toBe(true);
    }
  });
  it('refuses stdout for formats that must seek', async () => {
    const r = await cli('convert', src, '-', '-O', 'qcow2', '-o', 'compress=on');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot be written to a stream/);
  });
});

describe('amitrans convert --sha256', () => {
  it('reports the sha256 of the output file', async () => {
    const out = dir.file('hash.raw');
    const r = await cli('convert', src, out, '--sha256', '--json');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { sha256: string }).sha256).toBe(await sha256File(out));
  });
  it('a raw output equals its input byte for byte, holes included', async () => {
    const out = dir.file('same.raw');
    expect((await cli('convert', src, out)).code).toBe(0);
    expect(await sha256File(out)).toBe(await sha256File(src));
    await writeFile(dir.file('unused'), '');
  });
});
