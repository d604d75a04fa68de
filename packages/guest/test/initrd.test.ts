import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDevice } from '@amitrans/block';
import { requireTools, tmpDir, type TmpDir } from '@amitrans/testkit';
import {
  initScriptModules,
  listFileModules,
  modulesDepModules,
  readInitrd,
  sourceFromBlockDevice,
  summariseInitrd,
  type InitrdContents,
} from '../src/initrd/index.js';
import { Bzip2End, XzEnd, type EndScanner } from '../src/initrd/decoders.js';
import { TOOLS, compress, concat, cpioList, cpioOf, type Tool, type Tree } from './initrd-fixtures.js';

let tmp: TmpDir;
beforeAll(async () => {
  tmp = await tmpDir('amitrans-initrd-');
});
afterAll(async () => {
  await tmp.remove();
});

const ELF = new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]);

/** RHEL5 mkinitrd: a nash script that insmods modules kept flat in /lib. */
const NASH: Tree = {
  init:
    '#!/bin/nash\n\nmount -t proc /proc /proc\nsetquiet\necho Mounting proc filesystem\n' +
    'echo Loading xenblk.ko module\ninsmod /lib/xenblk.ko\necho Loading jbd.ko module\ninsmod /lib/jbd.ko\n' +
    'echo Loading ext3.ko module\ninsmod /lib/ext3.ko\nmkrootdev -t ext3 -o defaults,ro sda1\nswitchroot\n',
  'bin/nash': ELF,
  'bin/modprobe': { link: '/sbin/nash' },
  'lib/xenblk.ko': ELF,
  'lib/jbd.ko': ELF,
  'lib/ext3.ko': ELF,
  sysroot: { dir: true },
  'etc/ld.so.conf': '',
};

const EL8 = '4.18.0-477.el8.x86_64';
/** dracut with systemd: /init is a symlink, modules under usr/lib/modules, xz-compressed. */
const DRACUT: Tree = {
  init: { link: 'usr/lib/systemd/systemd' },
  lib: { link: 'usr/lib' },
  'usr/lib/systemd/systemd': ELF,
  'usr/lib/dracut/build-parameter.txt': ` --kver '${EL8}' --add-drivers ' virtio_blk '`,
  'usr/lib/dracut/modules.txt': 'bash\nsystemd\nkernel-modules\n',
  'usr/bin/dracut-cmdline': '#!/bin/sh\n',
  [`usr/lib/modules/${EL8}/kernel/drivers/block/virtio_blk.ko.xz`]: ELF,
  [`usr/lib/modules/${EL8}/kernel/drivers/net/virtio_net.ko.xz`]: ELF,
  [`usr/lib/modules/${EL8}/kernel/drivers/net/net_failover.ko.xz`]: ELF,
  [`usr/lib/modules/${EL8}/kernel/drivers/block/xen-blkfront.ko.xz`]: ELF,
  [`usr/lib/modules/${EL8}/modules.dep`]:
    'kernel/drivers/block/virtio_blk.ko.xz:\nkernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz\n' +
    'kernel/drivers/net/net_failover.ko.xz:\nkernel/drivers/block/xen-blkfront.ko.xz:\n',
  'etc/modules-load.d/virtio.conf': '# loaded early\nvirtio_pci\n; also\nvirtio-scsi\n',
  'etc/initrd-release': 'NAME="Red Hat Enterprise Linux"\n',
};

const JAMMY = '5.15.0-91-generic';
/** Ubuntu initramfs-tools: /init sources /scripts/functions, modules listed in conf/modules. */
const INITRAMFS_TOOLS: Tree = {
  init:
    '#!/bin/sh\n\n# Default PATH differs between shells\nexport PATH=/sbin:/usr/sbin:/bin:/usr/bin\n' +
    '[ -d /dev ] || mkdir -m 0755 /dev\n. /conf/initramfs.conf\n. /scripts/functions\nload_modules\n' +
    'maybe_break top\nrun_scripts /scripts/init-top\n',
  'conf/initramfs.conf': 'MODULES=most\nBUSYBOX=auto\nCOMPRESS=zstd\n',
  'conf/modules': '# List of modules that you want to include in your initramfs.\nvirtio_blk\nxen-blkfront\n\nvirtio_net debug=1\n',
  'scripts/local': '#!/bin/sh\n',
  'scripts/functions': '# -*- shell-script -*-\n',
  'scripts/init-top/udev': '#!/bin/sh\n',
  'bin/busybox': ELF,
  'bin/sh': { link: 'busybox' },
  'etc/modules': '',
  [`lib/modules/${JAMMY}/kernel/drivers/block/virtio_blk.ko`]: ELF,
  [`lib/modules/${JAMMY}/kernel/drivers/block/xen-blkfront.ko`]: ELF,
  [`lib/modules/${JAMMY}/kernel/drivers/net/virtio_net.ko`]: ELF,
  [`lib/modules/${JAMMY}/kernel/drivers/net/net_failover.ko`]: ELF,
  [`lib/modules/${JAMMY}/modules.dep`]:
    'kernel/drivers/block/virtio_blk.ko:\nkernel/drivers/block/xen-blkfront.ko:\n' +
    'kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko\nkernel/drivers/net/net_failover.ko:\n',
};

const BOOKWORM = '6.1.0-13-amd64';
/** A hand-made busybox initramfs. */
const BUSYBOX: Tree = {
  init:
    '#!/bin/busybox sh\n/bin/busybox --install -s\nmount -t proc proc /proc\nmodprobe virtio_pci\nmodprobe -q virtio_blk\n' +
    'insmod /lib/modules/6.1.0-13-amd64/kernel/fs/ext4/ext4.ko.zst # root fs\nfor m in $MODS; do modprobe $m; done\n' +
    'exec switch_root /newroot /sbin/init\n',
  'bin/busybox': ELF,
  'bin/sh': { link: 'busybox' },
  [`lib/modules/${BOOKWORM}/kernel/drivers/virtio/virtio_pci.ko`]: ELF,
  [`lib/modules/${BOOKWORM}/kernel/drivers/block/virtio_blk.ko.gz`]: ELF,
  [`lib/modules/${BOOKWORM}/kernel/fs/ext4/ext4.ko.zst`]: ELF,
  [`lib/modules/${BOOKWORM}/kernel/drivers/block/floppy.o`]: ELF,
  'lib/modules.txt.o.not': 'not a module',
  'empty-file': '',
  newroot: { dir: true },
};

/** What initramfs-tools and dracut put in front: an uncompressed cpio with CPU microcode. */
const EARLY: Tree = {
  early_cpio: '1\n',
  'kernel/x86/microcode/GenuineIntel.bin': new Uint8Array(3000).fill(0x5a),
};

function paths(c: InitrdContents, segment?: number): string[] {
  return c.entries.filter((e) => segment === undefined || e.segment === segment).map((e) => e.path);
}

async function readFileInitrd(path: string): Promise<InitrdContents> {
  // Through a BlockDevice, the way the lead reads an initrd out of a guest filesystem.
  const device = await FileDevice.open(path);
  try {
    return await readInitrd(sourceFromBlockDevice(device));
  } finally {
    await device.close();
  }
}

describe('initrd layouts', () => {
  it('RHEL5 nash initrd (gzip)', async (ctx) => {
    requireTools(ctx, 'cpio', 'gzip');
    const cpio = await cpioOf(tmp.path, 'nash', NASH);
    const c = await readFileInitrd(await compress(cpio, 'gzip'));
    expect(c.flavour).toBe('nash');
    expect(c.moduleNames).toEqual(['ext3', 'jbd', 'xenblk']);
    expect(c.modules.every((m) => m.kernelVersion === undefined)).toBe(true);
    expect(c.kernelVersions).toEqual([]);
    expect(c.moduleLists).toEqual([{ path: '/init', kind: 'init-script', modules: ['xenblk', 'jbd', 'ext3'] }]);
    expect(c.segments).toHaveLength(1);
    expect(c.segments[0]).toMatchObject({ offset: 0, compression: 'gzip', archive: 'newc', entries: c.entries.length });
    expect(paths(c).sort()).toEqual((await cpioList(cpio)).sort());
    expect(c.entries.find((e) => e.path === '/bin/modprobe')).toMatchObject({ type: 'symlink', linkTarget: '/sbin/nash' });
    expect(c.entries.find((e) => e.path === '/sysroot')?.type).toBe('directory');
    expect(c.entries.find((e) => e.path === '/lib/xenblk.ko')).toMatchObject({ type: 'file', size: ELF.length });
    expect(c.textFiles['/init']).toBe(NASH.init);
    expect(c.warnings).toEqual([]);
    expect(c.incomplete).toBe(false);
  });

  it('dracut initramfs: early microcode cpio, then xz (and gzip) main archive', async (ctx) => {
    requireTools(ctx, 'cpio', 'xz', 'gzip');
    const early = await cpioOf(tmp.path, 'dracut-early', EARLY);
    const main = await cpioOf(tmp.path, 'dracut', DRACUT);
    for (const tool of ['xz', 'gzip'] as const) {
      const img = join(tmp.path, `dracut-${tool}.img`);
      await concat(img, [early, await compress(main, tool)]);
      const c = await readFileInitrd(img);
      expect(c.flavour).toBe('dracut');
      expect(c.segments.map((s) => [s.compression, s.archive])).toEqual([
        ['none', 'newc'],
        [tool, 'newc'],
      ]);
      expect(c.segments[1]!.offset).toBe((await readFile(early)).length);
      expect(paths(c, 0).sort()).toEqual((await cpioList(early)).sort());
      expect(paths(c, 1).sort()).toEqual((await cpioList(main)).sort());
      expect(c.moduleNames).toEqual(['net_failover', 'virtio_blk', 'virtio_net', 'xen_blkfront']);
      expect(c.kernelVersions).toEqual([EL8]);
      expect(c.modules.every((m) => m.kernelVersion === EL8)).toBe(true);
      expect(c.entries.find((e) => e.path === '/init')).toMatchObject({ type: 'symlink', linkTarget: 'usr/lib/systemd/systemd' });
      expect(c.moduleLists).toEqual([
        { path: '/etc/modules-load.d/virtio.conf', kind: 'modules-load.d', modules: ['virtio_pci', 'virtio_scsi'] },
        { path: `/usr/lib/modules/${EL8}/modules.dep`, kind: 'modules.dep', modules: ['virtio_blk', 'virtio_net', 'net_failover', 'xen_blkfront'] },
      ]);
      expect(c.warnings).toEqual([]);
      expect(c.segments[1]!.length).toBe((await readFile(img)).length - c.segments[1]!.offset);
    }
  });

  it('Ubuntu initramfs-tools: early microcode cpio, then zstd main archive', async (ctx) => {
    requireTools(ctx, 'cpio', 'zstd');
    const early = await cpioOf(tmp.path, 'itools-early', EARLY);
    const main = await cpioOf(tmp.path, 'itools', INITRAMFS_TOOLS);
    const img = join(tmp.path, 'itools.img');
    await concat(img, [early, await compress(main, 'zstd')]);
    const c = await readFileInitrd(img);
    expect(c.flavour).toBe('initramfs-tools');
    expect(c.segments.map((s) => s.compression)).toEqual(['none', 'zstd']);
    expect(paths(c).sort()).toEqual([...(await cpioList(early)), ...(await cpioList(main))].sort());
    expect(c.moduleNames).toEqual(['net_failover', 'virtio_blk', 'virtio_net', 'xen_blkfront']);
    expect(c.kernelVersions).toEqual([JAMMY]);
    expect(c.moduleLists).toEqual([
      { path: '/conf/modules', kind: 'conf-modules', modules: ['virtio_blk', 'xen_blkfront', 'virtio_net'] },
      { path: '/etc/modules', kind: 'etc-modules', modules: [] },
      { path: `/lib/modules/${JAMMY}/modules.dep`, kind: 'modules.dep', modules: ['virtio_blk', 'xen_blkfront', 'virtio_net', 'net_failover'] },
    ]);
    expect(c.entries.find((e) => e.path === '/etc/modules')).toMatchObject({ type: 'file', size: 0 });
    expect(c.warnings).toEqual([]);
  });

  it('busybox initramfs', async (ctx) => {
    requireTools(ctx, 'cpio', 'bzip2');
    const cpio = await cpioOf(tmp.path, 'busybox', BUSYBOX);
    const c = await readFileInitrd(await compress(cpio, 'bzip2'));
    expect(c.flavour).toBe('busybox');
    expect(c.moduleNames).toEqual(['ext4', 'floppy', 'virtio_blk', 'virtio_pci']);
    expect(c.kernelVersions).toEqual([BOOKWORM]);
    expect(c.moduleLists).toEqual([{ path: '/init', kind: 'init-script', modules: ['virtio_pci', 'virtio_blk', 'ext4'] }]);
    expect(c.entries.find((e) => e.path === '/empty-file')).toMatchObject({ type: 'file', size: 0 });
    expect(c.warnings).toEqual([]);
  });

  it('no /init and no markers is unknown', async (ctx) => {
    requireTools(ctx, 'cpio');
    const c = await readFileInitrd(await cpioOf(tmp.path, 'bare', { 'etc/hostname': 'x\n', 'bin/busybox': ELF }));
    expect(c.flavour).toBe('unknown');
    expect(c.moduleNames).toEqual([]);
  });
});

describe('compressions and archive formats', () => {
  const tools: Tool[] = ['gzip', 'xz', 'lzma', 'zstd', 'bzip2', 'lz4'];
  for (const tool of tools) {
    it(`${tool}-compressed newc`, async (ctx) => {
      requireTools(ctx, 'cpio', TOOLS[tool]);
      const cpio = await cpioOf(tmp.path, `matrix-${tool}`, BUSYBOX);
      const file = await compress(cpio, tool);
      const c = await readInitrd(await readFile(file));
      expect(c.segments).toHaveLength(1);
      expect(c.segments[0]).toMatchObject({ compression: tool, archive: 'newc', decompressedBytes: (await readFile(cpio)).length });
      if (tool !== 'lzma') expect(c.segments[0]!.length).toBe((await readFile(file)).length);
      expect(paths(c).sort()).toEqual((await cpioList(cpio)).sort());
      expect(c.flavour).toBe('busybox');
      expect(c.moduleNames).toEqual(['ext4', 'floppy', 'virtio_blk', 'virtio_pci']);
      expect(c.warnings).toEqual([]);
      expect(c.incomplete).toBe(false);
    });
  }

  for (const format of ['crc', 'odc', 'bin'] as const) {
    it(`cpio -H ${format}`, async (ctx) => {
      requireTools(ctx, 'cpio', 'gzip');
      const cpio = await cpioOf(tmp.path, `format-${format}`, NASH, format);
      for (const file of [cpio, await compress(cpio, 'gzip')]) {
        const c = await readInitrd(await readFile(file));
        expect(c.segments[0]!.archive).toBe(format === 'bin' ? 'binary' : format);
        expect(paths(c).sort()).toEqual((await cpioList(cpio)).sort());
        expect(c.flavour).toBe('nash');
        expect(c.moduleNames).toEqual(['ext3', 'jbd', 'xenblk']);
        expect(c.warnings).toEqual([]);
      }
    });
  }

  it('several compressed archives back to back, with zero padding between them', async (ctx) => {
    requireTools(ctx, 'cpio', 'gzip', 'xz', 'zstd', 'bzip2', 'lz4');
    const early = await cpioOf(tmp.path, 'b2b-early', EARLY);
    const a = await cpioOf(tmp.path, 'b2b-a', { 'a/one': '1' });
    const b = await cpioOf(tmp.path, 'b2b-b', { 'b/two': '22' });
    const d = await cpioOf(tmp.path, 'b2b-d', { 'd/four': '4444' });
    const e = await cpioOf(tmp.path, 'b2b-e', { 'e/five': '55555' });
    const f = await cpioOf(tmp.path, 'b2b-f', { 'f/six': '666666' });
    const g = await cpioOf(tmp.path, 'b2b-g', NASH);
    const img = join(tmp.path, 'b2b.img');
    const files = [early, await compress(a, 'gzip'), await compress(b, 'xz'), await compress(d, 'zstd'), await compress(e, 'bzip2'), await compress(f, 'lz4'), await compress(g, 'gzip')];
    await concat(img, files, 4);
    const c = await readInitrd(await readFile(img));
    expect(c.warnings).toEqual([]);
    expect(c.segments.map((s) => s.compression)).toEqual(['none', 'gzip', 'xz', 'zstd', 'bzip2', 'lz4', 'gzip']);
    let at = 0;
    for (const [i, file] of files.entries()) {
      expect(c.segments[i]!.offset).toBe(at);
      const len = (await readFile(file)).length;
      at += len + ((4 - (len % 4)) % 4);
    }
    expect(paths(c)).toContain('/d/four');
    expect(paths(c)).toContain('/f/six');
    expect(c.flavour).toBe('nash');
    expect(c.entries.find((x) => x.path === '/e/five')).toMatchObject({ size: 5, segment: 4 });
  });

  it('two cpio archives inside one gzip stream, and a multi-member gzip file', async (ctx) => {
    requireTools(ctx, 'cpio', 'gzip');
    const a = await cpioOf(tmp.path, 'in1-a', { 'a/one': '1' });
    const b = await cpioOf(tmp.path, 'in1-b', INITRAMFS_TOOLS);
    const both = join(tmp.path, 'in1.cpio');
    await concat(both, [a, b]);
    const c = await readInitrd(await readFile(await compress(both, 'gzip')));
    expect(c.segments).toHaveLength(1);
    expect(c.flavour).toBe('initramfs-tools');
    expect(paths(c)).toContain('/a/one');
    const members = join(tmp.path, 'members.gz');
    await concat(members, [await compress(a, 'gzip'), await compress(b, 'gzip')]);
    const m = await readInitrd(await readFile(members));
    expect(m.segments.map((s) => s.compression)).toEqual(['gzip', 'gzip']);
    expect(paths(m).sort()).toEqual(paths(c).sort());
  });
});

describe('module list parsers', () => {
  it('init scripts: insmod and modprobe with literal names only', () => {
    const text = [
      '#!/bin/nash',
      'insmod /lib/xen-vbd.ko',
      'echo "Loading virtio_blk module"',
      '/sbin/modprobe -q -b virtio-net && modprobe "$x"',
      'modprobe ${mods}; busybox insmod /lib/modules/5.4/e1000.ko.xz opt=1',
      '# insmod /lib/commented.ko',
      'insmod',
    ].join('\n');
    expect(initScriptModules(text)).toEqual(['xen_vbd', 'virtio_net', 'e1000']);
  });

  it('etc/modules style lists and modules.dep', () => {
    expect(listFileModules('# c\n\nxen-blkfront\n  virtio_blk  max_segs=2\n; x\nbad/name\nxen-blkfront\n')).toEqual(['xen_blkfront', 'virtio_blk']);
    expect(modulesDepModules('kernel/a-b.ko.zst: kernel/c.ko.zst\nkernel/c.ko.zst:\n\ngarbage\n')).toEqual(['a_b', 'c']);
  });

  it('summariseInitrd gives what guest inspection keeps', async (ctx) => {
    requireTools(ctx, 'cpio');
    const c = await readInitrd(await readFile(await cpioOf(tmp.path, 'summary', NASH)));
    expect(summariseInitrd(c)).toEqual({ modules: ['ext3', 'jbd', 'xenblk'], flavour: 'nash', warnings: [] });
  });
});

describe('finding the end of xz and bzip2 streams', () => {
  for (const tool of ['xz', 'bzip2'] as const) {
    it(`${tool}: the end is found wherever the chunks split`, async (ctx) => {
      requireTools(ctx, 'cpio', tool);
      const stream = await readFile(await compress(await cpioOf(tmp.path, `end-${tool}`, BUSYBOX), tool));
      const data = Buffer.concat([stream, Buffer.from('AFTER THE STREAM, 0123456789')]);
      const scanner = (): EndScanner => (tool === 'xz' ? new XzEnd() : new Bzip2End());
      for (let split = 1; split < data.length; split += split < 40 || split > stream.length - 40 ? 1 : 13) {
        const s = scanner();
        const first = s.push(data.subarray(0, split));
        const end = first ?? split + (s.push(data.subarray(split)) ?? Number.NaN);
        expect(end, `split at ${split}`).toBe(stream.length);
      }
    });
  }
});
