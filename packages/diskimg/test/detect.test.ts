import { copyFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTools, run, sfdiskImage, tmpDir, writeSparseImage, type TmpDir } from '@amitrans/testkit';
import { detectFile, driverByName } from '../src/index.js';

let dir: TmpDir;
let raw: string;
beforeAll(async () => {
  dir = await tmpDir();
  raw = dir.file('src.raw');
  await writeSparseImage(raw, 5 * 1024 * 1024 + 7 * 512, 42);
});
afterAll(async () => {
  await dir.remove();
});

describe('detection names what qemu-img convert made', () => {
  const cases: [string, string[], string, string | undefined][] = [
    ['vpc fixed', ['-O', 'vpc', '-o', 'subformat=fixed'], 'vhd', 'fixed'],
    ['vpc fixed, force_size', ['-O', 'vpc', '-o', 'subformat=fixed,force_size=on'], 'vhd', 'fixed'],
    ['vpc dynamic', ['-O', 'vpc', '-o', 'subformat=dynamic'], 'vhd', 'dynamic'],
    ['vdi', ['-O', 'vdi'], 'vdi', undefined],
    ['vmdk monolithicSparse', ['-O', 'vmdk', '-o', 'subformat=monolithicSparse'], 'vmdk', 'monolithicSparse'],
    ['vmdk streamOptimized', ['-O', 'vmdk', '-o', 'subformat=streamOptimized'], 'vmdk', 'streamOptimized'],
    ['qcow2 compat 0.10', ['-O', 'qcow2', '-o', 'compat=0.10'], 'qcow2', undefined],
    ['qcow2 compat 1.1', ['-O', 'qcow2', '-o', 'compat=1.1'], 'qcow2', undefined],
  ];
  for (const [name, args, format, subformat] of cases) {
    it(name, async (ctx) => {
      requireTools(ctx, 'qemu-img');
      const out = dir.file(`${name.replace(/\W+/g, '-')}.img`);
      await run('qemu-img', ['convert', '-f', 'raw', ...args, raw, out]);
      const d = await detectFile(out);
      expect(d.format).toBe(format);
      if (subformat) expect(d.subformat).toBe(subformat);
      if (format === 'qcow2') expect(d.subformat).toBe(name.endsWith('0.10') ? 'compat 0.10' : 'compat 1.1');
    });
  }
});

describe('detection of raw disks and their content', () => {
  it('an MBR disk', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const p = dir.file('mbr.img');
    await sfdiskImage(p, 8 * 1024 * 1024, 'label: dos\nstart=2048, type=83\n');
    expect(await detectFile(p)).toMatchObject({ format: 'raw', content: 'mbr' });
  });
  it('a GPT disk', async (ctx) => {
    requireTools(ctx, 'sfdisk');
    const p = dir.file('gpt.img');
    await sfdiskImage(p, 8 * 1024 * 1024, 'label: gpt\nstart=2048, size=4096\n');
    expect(await detectFile(p)).toMatchObject({ format: 'raw', content: 'gpt' });
  });
  for (const t of ['ext2', 'ext3', 'ext4'] as const) {
    it(`a bare ${t} filesystem`, async (ctx) => {
      requireTools(ctx, `mkfs.${t}`);
      const p = dir.file(`${t}.fs`);
      await run(`mkfs.${t}`, ['-q', '-F', p, '8M']);
      expect(await detectFile(p)).toMatchObject({ format: 'raw', content: t });
    });
  }
  it('random bytes are raw with unknown content', async () => {
    expect(await detectFile(raw)).toMatchObject({ format: 'raw', content: 'unknown' });
  });
  it('an empty file is raw', async () => {
    const p = dir.file('empty.img');
    await writeFile(p, '');
    expect(await detectFile(p)).toMatchObject({ format: 'raw', virtualSize: 0 });
  });
});

describe('detection of compressed files and archives', () => {
  for (const [tool, format, ext] of [['gzip', 'gzip', 'gz'], ['bzip2', 'bzip2', 'bz2'], ['xz', 'xz', 'xz']] as const) {
    it(`a file made by ${tool}`, async (ctx) => {
      requireTools(ctx, tool);
      const p = dir.file(`c.${ext}.src`);
      await copyFile(raw, p);
      await run(tool, ['-f', '-k', p]);
      expect(await detectFile(`${p}.${ext}`)).toMatchObject({ format });
    });
  }
  it('a tar whose first entry is an .ovf is an OVA; another tar is a tar', async (ctx) => {
    requireTools(ctx, 'tar');
    await writeFile(dir.file('vm.ovf'), '<?xml version="1.0"?><Envelope/>');
    await copyFile(raw, dir.file('vm-disk1.vmdk'));
    await run('tar', ['-cf', dir.file('vm.ova'), '-C', dir.path, 'vm.ovf', 'vm-disk1.vmdk']);
    expect(await detectFile(dir.file('vm.ova'))).toMatchObject({ format: 'ova', firstEntry: 'vm.ovf' });
    await run('tar', ['-cf', dir.file('plain.tar'), '-C', dir.path, 'vm-disk1.vmdk', 'vm.ovf']);
    expect(await detectFile(dir.file('plain.tar'))).toMatchObject({ format: 'tar', firstEntry: 'vm-disk1.vmdk' });
    await run('tar', ['--format=gnu', '-cf', dir.file('gnu.ova'), '-C', dir.path, 'vm.ovf']);
    expect(await detectFile(dir.file('gnu.ova'))).toMatchObject({ format: 'ova' });
  });
});

describe('detection returns the driver it probed', () => {
  it('every container, raw and tar included, comes from the one driver table', async (ctx) => {
    requireTools(ctx, 'qemu-img', 'tar');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, dir.file('d.qcow2')]);
    const q = await detectFile(dir.file('d.qcow2'));
    expect(q.driver).toBe(driverByName('qcow2'));
    const r = await detectFile(raw);
    expect(r.driver).toBe(driverByName('raw'));
    expect(r.driver!.name).toBe('raw');
    await writeFile(dir.file('d.ovf'), '<?xml version="1.0"?><Envelope/>');
    await run('tar', ['-cf', dir.file('d.tar'), '-C', dir.path, 'src.raw']);
    await run('tar', ['-cf', dir.file('d.ova'), '-C', dir.path, 'd.ovf']);
    expect((await detectFile(dir.file('d.tar'))).driver).toBe(driverByName('tar'));
    expect((await detectFile(dir.file('d.ova'))).driver).toBe(driverByName('ova'));
    await run('gzip', ['-k', '-f', dir.file('d.ovf')]);
    expect((await detectFile(dir.file('d.ovf.gz'))).driver).toBeUndefined();
  });
});
