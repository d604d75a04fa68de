import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, open, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseOvf, RESOURCE_TYPE, readTarEntries, serializeTarHeader } from '@amitrans/ova';
import { FileDevice } from '@amitrans/block';
import {
  buildDebianAmi,
  qemuBoot,
  qemuImgCompare,
  requireTools,
  run,
  sha256File,
  tmpDir,
  writeSparseImage,
  type TmpDir,
} from '@amitrans/testkit';
import type { ConvertResult, TranslateResult } from '@amitrans/diskimg';
import { cli, runBin } from './helpers.js';

const FIXED = ['-o', 'cid=0badcafe,uuid=6a0e7a52-0c1f-4c55-9d0e-3f0a5b7c9e11,mtime=1700000000'];

let dir: TmpDir;
let src = '';
const SIZE = 5 * 1024 * 1024 + 7 * 512;

beforeAll(async () => {
  dir = await tmpDir();
  src = dir.file('src.raw');
  await writeSparseImage(src, SIZE, 4242);
});
afterAll(async () => {
  await dir?.remove();
});

type Ctx = { skip: (note?: string) => void };

async function ok(...args: string[]): Promise<string> {
  const r = await cli(...args);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

/** Files in the test directory that an aborted write could have left. */
async function leftovers(): Promise<string[]> {
  return (await readdir(dir.path)).filter((f) => f.endsWith('.partial'));
}


async function ovfOf(ova: string): Promise<ReturnType<typeof parseOvf>> {
  const dev = await FileDevice.open(ova);
  try {
    const [first] = await readTarEntries(dev);
    expect(first!.name).toMatch(/\.ovf$/);
    const buf = new Uint8Array(first!.size);
    await dev.read(buf, first!.dataOffset);
    return parseOvf(buf);
  } finally {
    await dev.close();
  }
}

describe('amitrans convert to and from OVA', () => {
  it('-O ova from a raw disk; info, convert back; the appliance flags land in the OVF', async (ctx) => {
    requireTools(ctx, 'qemu-img', 'tar', 'sha1sum');
    const ova = dir.file('flags.ova');
    const summary = JSON.parse(await ok('convert', src, ova, '--name', 'Web Server', '--cpus', '4', '--memory', '3072', '--nic', 'vmxnet3', '--controller', 'sata', '--json')) as ConvertResult;
    expect(summary.format).toBe('ova');
    expect(summary.virtualSize).toBe(SIZE);
    const ovf = await ovfOf(ova);
    const sys = ovf.systems[0]!;
    expect(sys.name).toBe('Web Server');
    expect(sys.os?.id).toBe(101); // generic Linux 64-bit: convert does not look inside
    const item = (t: number) => sys.items.find((i) => i.resourceType === t)!;
    expect(item(RESOURCE_TYPE.processor).virtualQuantity).toBe('4');
    expect(item(RESOURCE_TYPE.memory).virtualQuantity).toBe('3072');
    expect(item(RESOURCE_TYPE.ethernetAdapter).resourceSubType).toBe('VmxNet3');
    expect(item(RESOURCE_TYPE.disk).parent).toBe(item(RESOURCE_TYPE.sataController).instanceId);

    const info = JSON.parse(await ok('info', ova, '--json')) as { format: string; virtualSize: number };
    expect(info).toMatchObject({ format: 'ova', virtualSize: SIZE });
    const back = dir.file('back.raw');
    await ok('convert', ova, back);
    expect(await qemuImgCompare(src, 'raw', back, 'raw')).toBe(true);
    // The same disk, taken out of the archive by GNU tar and read by qemu-img.
    const x = dir.file('flags-x');
    await mkdir(x);
    await run('tar', ['-xf', ova, '-C', x]);
    expect(await qemuImgCompare(src, 'raw', join(x, 'Web_Server-disk001.vmdk'), 'vmdk')).toBe(true);
    expect((await run('sha1sum', ['-c', 'Web_Server.mf'], { cwd: x })).stdout).toMatch(/^Web_Server\.ovf: OK\nWeb_Server-disk001\.vmdk: OK\n$/);
  });

  it('--ovf-version 2.0 writes a SHA-256 manifest', async (ctx) => {
    requireTools(ctx, 'tar', 'sha256sum');
    const ova = dir.file('two.ova');
    await ok('convert', src, ova, '--ovf-version', '2.0');
    expect((await ovfOf(ova)).version).toBe('2.0');
    const x = dir.file('two-x');
    await mkdir(x);
    await run('tar', ['-xf', ova, '-C', x]);
    expect((await run('sha256sum', ['-c', 'two.mf'], { cwd: x })).stdout).toBe('two.ovf: OK\ntwo-disk001.vmdk: OK\n');
  });

  it('to stdout (the VMDK spooled): the same bytes as the file output, and two runs agree', async () => {
    const file = dir.file('same.ova');
    await ok('convert', src, file, ...FIXED, '--name', 'same');
    const again = dir.file('same2.ova');
    await ok('convert', src, again, ...FIXED, '--name', 'same');
    expect(await sha256File(again)).toBe(await sha256File(file));
    const piped = dir.file('piped.bin');
    const r = await runBin(['convert', src, '-', '-O', 'ova', ...FIXED, '--name', 'same'], piped);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await sha256File(piped)).toBe(await sha256File(file));
  });

  it('refuses a bad appliance with a typed error and writes nothing', async () => {
    const good = dir.file('good.ova');
    await ok('convert', src, good, ...FIXED);
    const bytes = await readFile(good);
    const dev = await FileDevice.open(good);
    const entries = await readTarEntries(dev);
    await dev.close();
    const vmdk = entries.find((e) => e.name.endsWith('.vmdk'))!;
    const cases: [string, (b: Buffer) => void, RegExp][] = [
      ['mismatch', (b) => (b[vmdk.dataOffset + 70000]! ^= 0x10), /manifest.*SHA1 of good-disk001\.vmdk is/],
      ['overrun', (b) => b.set(serializeTarHeader({ name: vmdk.name, size: vmdk.size - 1024, mtime: 0 }), vmdk.headerOffset), /runs past its entry/],
      ['traversal', (b) => b.set(serializeTarHeader({ name: '../good-disk001.vmdk', size: vmdk.size, mtime: 0 }), vmdk.headerOffset), /unsafe name "\.\.\/good-disk001\.vmdk"/],
      ['missing', (b) => b.set(serializeTarHeader({ name: 'other.vmdk', size: vmdk.size, mtime: 0 }), vmdk.headerOffset), /(names "good-disk001\.vmdk", which is not in the archive)/],
    ];
    for (const [name, damage, message] of cases) {
      const bad = Buffer.from(bytes);
      damage(bad);
      const input = dir.file(`bad-${name}.ova`);
      await writeFile(input, bad);
      for (const verb of [['convert', input, dir.file(`bad-${name}.raw`)], ['info', input]]) {
        const r = await cli(...verb);
        expect(r.code, `${name}: ${r.stderr}`).toBe(1);
        expect(r.stderr).toMatch(message);
        expect(r.stderr).not.toMatch(/internal error/);
      }
      expect(existsSync(dir.file(`bad-${name}.raw`))).toBe(false);
    }
    expect(await leftovers()).toEqual([]);
  });
});

describe('compressed deliverables', () => {
  const cases: [string, string[], string, string[]][] = [
    ['disk.img.gz', [], 'gzip', ['gzip', '-dc']],
    ['disk.img.bz2', [], 'bzip2', ['bzip2', '-dc']],
    ['disk.img.xz', [], 'xz', ['xz', '-dc']],
    ['template.vhd.bz2', [], 'bzip2', ['bzip2', '-dc']],
    ['plain.vhd', ['-o', 'compress=xz'], 'xz', ['xz', '-dc']],
    ['plain.raw', ['-o', 'compress=gzip'], 'gzip', ['gzip', '-dc']],
  ];
  for (const [name, opts, compression, [tool, ...args]] of cases) {
    it(`${name} ${opts.join(' ')}: the system ${tool} gives back the image`, async (ctx) => {
      requireTools(ctx, tool!, 'qemu-img');
      const out = dir.file(name);
      const r = await cli('convert', src, out, ...opts, '--json', '-p');
      expect(r.code, r.stderr).toBe(0);
      // Streaming, with progress (-p forces the meter on a non-terminal).
      expect(r.stderr).toMatch(/convert\s+100\.0%/);
      const summary = JSON.parse(r.stdout) as ConvertResult;
      expect(summary.compression).toBe(compression);
      const vhd = name.includes('.vhd');
      expect(summary.format).toBe(vhd ? 'vhd' : 'raw');
      const plain = dir.file(`${name}.out`);
      const fh = await open(plain, 'w');
      await new Promise<void>((resolve, reject) => {
        const child = spawn(tool!, [...args, out], { stdio: ['ignore', fh.fd, 'inherit'] });
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${tool} exit ${code}`))));
      });
      await fh.close();
      expect(await qemuImgCompare(src, 'raw', plain, vhd ? 'vpc' : 'raw')).toBe(true);
      if (!vhd) expect(await sha256File(plain)).toBe(await sha256File(src));
    });
  }

  it('refuses compression of other formats, and a bad compress= value, writing nothing', async () => {
    for (const args of [[dir.file('x.qcow2.gz')], [dir.file('x.vmdk'), '-o', 'compress=bzip2'], [dir.file('x.raw'), '-o', 'compress=zip']]) {
      const r = await cli('convert', src, ...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/compress/);
      expect(existsSync(args[0]!)).toBe(false);
    }
    expect(await leftovers()).toEqual([]);
  });
});

// The translate issue's boot fixture, as a VirtualBox appliance.
describe('translate -O ova: AMI in, VirtualBox appliance out', () => {
  let ami = '';
  let ova = '';
  let result: TranslateResult | undefined;
  let building: Promise<void> | undefined;
  async function appliance(ctx: Ctx): Promise<string> {
    requireTools(ctx, 'mkfs.ext3', 'depmod', 'cpio');
    building ??= (async () => {
      ami = dir.file('debian-ami.img');
      await buildDebianAmi(ctx, ami);
      ova = dir.file('debian.ova');
      const r = await cli('translate', ami, ova, '-t', 'virtualbox', '-O', 'ova', '--json', ...FIXED);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      result = JSON.parse(r.stdout) as TranslateResult;
    })();
    await building;
    return ova;
  }

  it('describes the guest: Debian 64-bit, the IDE controller the verdict chose (no ahci in the kernel)', async (ctx) => {
    const path = await appliance(ctx);
    expect(result!.format).toBe('ova');
    expect(result!.verdict.bus).toBe('ide');
    const sys = (await ovfOf(path)).systems[0]!;
    expect(sys.name).toBe('debian');
    expect(sys.os).toEqual({ id: 96, description: 'Debian 64-Bit' });
    expect(sys.systemType).toMatch(/^vmx-\d+$/);
    const controller = sys.items.find((i) => i.resourceType === RESOURCE_TYPE.ideController);
    expect(controller?.resourceSubType).toBe('PIIX4');
    expect(sys.items.find((i) => i.resourceType === RESOURCE_TYPE.disk)!.parent).toBe(controller!.instanceId);
  }, 240_000);

  it('converted back to raw by amitrans, boots in QEMU to the marker', async (ctx) => {
    requireTools(ctx, 'qemu-system-x86_64', 'qemu-img', 'tar');
    const path = await appliance(ctx);
    const raw = dir.file('from-ova.raw');
    await ok('convert', path, raw);
    // The VMDK inside, as GNU tar extracts it, is the same disk.
    const x = dir.file('debian-x');
    await mkdir(x);
    await run('tar', ['-xf', path, '-C', x]);
    expect(await qemuImgCompare(raw, 'raw', join(x, 'debian-disk001.vmdk'), 'vmdk')).toBe(true);
    const boot = await qemuBoot(raw, { format: 'raw', iface: 'ide' });
    expect(boot.timedOut, boot.output.slice(-2000)).toBe(false);
    expect(boot.output).toMatch(/AMITRANS-BOOT-OK kernel=6\.1\.\d+-\d+-cloud-amd64/);
  }, 240_000);

  it('--controller sata follows through to the bus check: refused, the kernel has no ahci', async (ctx) => {
    await appliance(ctx);
    const out = dir.file('sata.ova');
    const r = await cli('translate', ami, out, '-t', 'virtualbox', '--controller', 'sata');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ahci/);
    expect(existsSync(out)).toBe(false);
  }, 240_000);

  it('-t xenserver to .vhd.bz2: the CloudStack/XenServer template form, a VHD the system bzip2 unpacks', async (ctx) => {
    requireTools(ctx, 'bzip2', 'qemu-img');
    await appliance(ctx);
    const out = dir.file('template.vhd.bz2');
    const r = await cli('translate', ami, out, '-t', 'xenserver', '--json');
    expect(r.code, r.stderr).toBe(0);
    const t = JSON.parse(r.stdout) as TranslateResult;
    expect(t.format).toBe('vhd');
    expect(t.notes).toContain('the output is bzip2-compressed');
    await run('sh', ['-c', `bzip2 -dc '${out}' > '${dir.file('template.vhd')}'`]);
    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', dir.file('template.vhd')])).stdout) as { format: string; 'virtual-size': number };
    expect(info.format).toBe('vpc');
    expect(info['virtual-size']).toBeGreaterThanOrEqual(t.virtualSize);
    // Read back by amitrans from the decompressed file: the translated guest.
    const inspected = JSON.parse(await ok('inspect', dir.file('template.vhd'), '--json')) as { format: string; report: { distro: { id: string } } };
    expect(inspected.format).toBe('vhd');
    expect(inspected.report.distro.id).toBe('debian');
  }, 240_000);

  it('the input is never written', async (ctx) => {
    await appliance(ctx);
    const copy = dir.file('ami-copy.img');
    await copyFile(ami, copy);
    const before = await sha256File(copy);
    await ok('translate', copy, dir.file('again.ova'), '-t', 'virtualbox', ...FIXED);
    expect(await sha256File(copy)).toBe(before);
  }, 240_000);
});
