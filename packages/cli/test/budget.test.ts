import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, tmpDir, writeSparseImage, type TmpDir } from '@amitrans/testkit';
import { binary, cli } from './helpers.js';

// Issue 22: a header that claims a huge table is refused before anything is allocated,
// in a moment and well under 256 MiB, whatever the file's size; the run reports it as a
// one-line error naming the file and the field.
let dir: TmpDir;
let src: string;

const MIB = 1024 * 1024;
const ENTRIES = 64 * 1024 * 1024;

beforeAll(async () => {
  dir = await tmpDir();
  src = dir.file('src.raw');
  await writeSparseImage(src, 4 * MIB, 9);
});
afterAll(async () => {
  await dir.remove();
});

/** Run the CLI in a child and read its own peak RSS (process.resourceUsage) at exit. */
function peakRss(args: string[]): Promise<{ code: number | null; stderr: string; rssMiB: number; seconds: number }> {
  const wrapper = `process.on('exit', () => process.stderr.write('\\nmaxRSS=' + process.resourceUsage().maxRSS + '\\n'));
process.argv = [process.argv[0], ${JSON.stringify(binary())}, ...${JSON.stringify(args)}];
await import(${JSON.stringify(binary())});`;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', wrapper], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const kib = Number(/maxRSS=(\d+)/.exec(stderr)?.[1] ?? NaN);
      resolve({ code, stderr: stderr.replace(/\nmaxRSS=\d+\n/, ''), rssMiB: kib / 1024, seconds: (performance.now() - started) / 1000 });
    });
  });
}

async function patch(file: string, edits: (b: DataView) => void, length: number, at = 0): Promise<void> {
  const fh = await open(file, 'r+');
  const buf = Buffer.alloc(length);
  await fh.read(buf, 0, length, at);
  edits(new DataView(buf.buffer, buf.byteOffset, buf.byteLength));
  await fh.write(buf, 0, length, at);
  await fh.close();
}

async function grow(file: string, size: number): Promise<void> {
  const fh = await open(file, 'r+');
  await fh.truncate(size);
  await fh.close();
}

/** VHD footer and dynamic header checksum: the one's complement of the byte sum without it. */
function vhdChecksum(v: DataView, at: number, length: number, field: number): void {
  v.setUint32(at + field, 0);
  let sum = 0;
  for (let i = 0; i < length; i++) sum = (sum + v.getUint8(at + i)) >>> 0;
  v.setUint32(at + field, ~sum >>> 0);
}

async function expectRefused(file: string, field: RegExp): Promise<void> {
  for (const args of [['info', file], ['convert', file, dir.file('out.qcow2')]]) {
    const r = await peakRss(args);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(field);
    expect(r.stderr).toMatch(/table budget/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.rssMiB).toBeLessThan(256);
  }
}

describe('tables a header claims are held to the memory budget', () => {
  it('a VDI claiming 512-byte blocks and a 64 Mi-entry block map', async () => {
    const vdi = dir.file('huge-map.vdi');
    expect((await cli('convert', src, vdi)).code).toBe(0);
    await patch(vdi, (v) => {
      v.setBigUint64(0x170, BigInt(ENTRIES) * 512n, true); // disk size
      v.setUint32(0x178, 512, true); // block size
      v.setUint32(0x180, ENTRIES, true); // blocks in image
    }, 0x200);
    await grow(vdi, MIB + ENTRIES * 4 + 64 * MIB); // the map fits in the (sparse) file
    await expectRefused(vdi, /VDI header at byte 384: a block map of 67108864 entries/);
  }, 60_000);

  it('a dynamic VHD claiming 512-byte blocks and a 64 Mi-entry BAT', async () => {
    const vhd = dir.file('huge-bat.vhd');
    expect((await cli('convert', src, vhd, '-O', 'vhd')).code).toBe(0);
    // Footer copy at 0, dynamic header at 512 (as our writer and qemu-img lay them out).
    await patch(vhd, (v) => {
      v.setBigUint64(48, BigInt(ENTRIES) * 512n); // current size
      for (const [i, c] of [...'qem2'].entries()) v.setUint8(28 + i, c.charCodeAt(0)); // sized by current size, not CHS
      vhdChecksum(v, 0, 512, 64);
      v.setUint32(512 + 28, ENTRIES); // max table entries
      v.setUint32(512 + 32, 512); // block size
      vhdChecksum(v, 512, 1024, 36);
    }, 1536);
    const fh = await open(vhd, 'r');
    const footer = Buffer.alloc(512);
    await fh.read(footer, 0, 512, 0);
    await fh.close();
    await grow(vhd, 2048 + ENTRIES * 4 + 64 * MIB);
    const end = await open(vhd, 'r+');
    await end.write(footer, 0, 512, (await end.stat()).size - 512);
    await end.close();
    await expectRefused(vhd, /a BAT of 67108864 entries/);
  }, 60_000);
});

describe('a virtual size the output format cannot represent is refused, as qemu-img refuses it', () => {
  // 116 bytes claiming an 8 PiB zero extent: it used to take 2.1 GB and write a 1.1 TB VMDK
  // that qemu-img would not open ("L1 size too big").
  it('a VMDK descriptor with `RW 17592186044415 ZERO`, to VMDK and qcow2', async () => {
    const desc = dir.file('zero.vmdk');
    await writeFile(desc, '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 17592186044415 ZERO\n');
    for (const [format, field] of [['vmdk', /VMDK sparse header at byte 12: .* too large for a sparse VMDK/], ['qcow2', /qcow2 header at byte 24: .* too large for qcow2 with 65536-byte clusters/]] as const) {
      const out = dir.file(`zero-out.${format}`);
      const r = await peakRss(['convert', desc, out, '-O', format]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(field);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.rssMiB).toBeLessThan(256);
      expect(existsSync(out)).toBe(false);
    }
    // The largest qcow2 size QEMU accepts still converts, and qemu-img opens the result.
    const big = dir.file('big.vmdk');
    await writeFile(big, '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 4398046511104 ZERO\n');
    const out = dir.file('big.qcow2');
    const r = await peakRss(['convert', big, out, '-O', 'qcow2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.rssMiB).toBeLessThan(256);
    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', out])).stdout) as { 'virtual-size': number };
    expect(info['virtual-size']).toBe(2 ** 51);
  }, 60_000);
});
