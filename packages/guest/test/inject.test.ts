import { createHash } from 'node:crypto';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import { chooseRewriteCompression, injectionMembers, readInitrd, rewriteInitrd, sourceFromBytes } from '../src/initrd/index.js';
import { gzipSync } from 'node:zlib';
import { ImageError } from '@amitrans/block';
import { appendSegment, injectionArchive, nashInsertInsmods, planInjection, type InjectPlan } from '../src/initrd/inject.js';
import { writeNewcArchive } from '../src/initrd/cpiowriter.js';
import type { DepmodTexts } from '../src/initrd/depmod.js';
import { builtInitrd, debianModuleTree, type ModuleTree } from './kmod-fixtures.js';

let tmp: TmpDir;
beforeAll(async () => {
  tmp = await tmpDir('amitrans-inject-');
});
afterAll(async () => {
  await tmp.remove();
});

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function guestTexts(tree: ModuleTree): Promise<DepmodTexts> {
  const t = (n: string): Promise<string> => readFile(join(tree.dir, n), 'utf8');
  return { dep: await t('modules.dep'), alias: await t('modules.alias'), softdep: await t('modules.softdep'), symbols: await t('modules.symbols'), devname: await t('modules.devname') };
}

/** Plan, read the module files from the guest tree, rewrite the main archive: the new initrd, the plan, and the bytes kept in front. */
async function inject(tree: ModuleTree, original: Uint8Array, want: string[]): Promise<{ bytes: Uint8Array; plan: InjectPlan; kept: number }> {
  const initrd = await readInitrd(original);
  const plan = planInjection({ initrd, initrdPath: '/boot/initrd.img', kernel: tree.kver, want, guest: await guestTexts(tree) });
  const bytes = new Map<string, Uint8Array>();
  for (const m of plan.modules) bytes.set(m.source, await readFile(join(tree.dir, m.source)));
  const last = initrd.segments[initrd.segments.length - 1]!;
  const compression = chooseRewriteCompression(last.compression, undefined)!;
  const r = await rewriteInitrd(sourceFromBytes(original), initrd, injectionMembers(plan, bytes), { compression, maxOutput: 256 << 20 });
  expect(r.kept).toBe(last.offset);
  return { bytes: r.bytes, plan, kept: r.kept };
}

/** The extracted tree's root (unmkinitramfs puts an early cpio in early/ and the rest in main/). */
async function unpack(img: string, dir: string): Promise<string> {
  await run('unmkinitramfs', [img, dir]);
  const top = await readdir(dir);
  return top.includes('main') ? join(dir, 'main') : dir;
}

/**
 * The checks every flavour shares: the added files listed by lsinitramfs and by cpio -t of
 * the main archive, each once (the files they replace are gone); unpacked by unmkinitramfs,
 * module bytes equal to the guest's, depmod's modules.dep for the set, modprobe through our
 * .bin files alone.
 */
async function checkExtracted(tree: ModuleTree, img: string, kept: number, plan: InjectPlan, name: string): Promise<string> {
  const lsinitramfs = (await run('lsinitramfs', [img])).stdout.split('\n');
  const listing = (await run('sh', ['-c', `tail -c +${kept + 1} "${img}" | gzip -dc | cpio -t --quiet`])).stdout.split('\n');
  for (const list of [lsinitramfs, listing]) {
    for (const m of plan.modules) expect(list).toContain(m.target);
    for (const f of plan.files) expect(list.filter((l) => l === f.path)).toEqual([f.path]);
  }
  const root = await unpack(img, join(tmp.path, `${name}-x`));
  for (const m of plan.modules) expect(sha(await readFile(join(root, m.target)))).toBe(sha(await readFile(join(tree.dir, m.source))));
  for (const f of plan.files) expect(sha(await readFile(join(root, f.path)))).toBe(sha(f.data!));
  const moddir = join(root, 'usr/lib/modules', tree.kver);
  const ours = await readFile(join(moddir, 'modules.dep'), 'utf8');
  // depmod's own output for the module set we left there.
  const copy = join(tmp.path, `${name}-depmod`);
  await run('mkdir', ['-p', join(copy, 'lib')]);
  await run('cp', ['-a', join(root, 'usr/lib/modules'), join(copy, 'lib/')]);
  await run('depmod', ['-b', copy, tree.kver]);
  const norm = (t: string): string[] => t.trim().split('\n').map((l) => { const [k, v = ''] = l.split(':'); return `${k}:${v.trim().split(/\s+/).filter(Boolean).sort().join(' ')}`; });
  expect(norm(ours)).toEqual(norm(await readFile(join(copy, 'lib/modules', tree.kver, 'modules.dep'), 'utf8')));
  // modprobe with the text files gone: only our .bin indexes are left to resolve through.
  for (const f of ['modules.dep', 'modules.alias', 'modules.symbols', 'modules.softdep']) await rm(join(moddir, f), { force: true });
  const show = await run('modprobe', ['--show-depends', '-d', root, '-S', tree.kver, 'virtio_blk']);
  expect(show.stdout).toMatch(/virtio_ring\.ko[\s\S]*virtio\.ko[\s\S]*virtio_blk\.ko/);
  const pci = await run('modprobe', ['--show-depends', '-d', root, '-S', tree.kver, 'virtio_pci']);
  expect(pci.stdout).toMatch(/virtio_pci\.ko/);
  return root;
}

describe('adding modules to real initrds (Debian kernel; lsinitramfs, depmod, modprobe as oracles)', () => {
  it('initramfs-tools (MODULES=list, only xen-blkfront, zstd): modules, indexes and a full conf/modules in the rewritten archive (gzip)', async (ctx) => {
    requireTools(ctx, 'lsinitramfs', 'unmkinitramfs', 'modprobe');
    const tree = await debianModuleTree(ctx);
    const src = await builtInitrd(ctx, 'initramfs-tools', ['xen-blkfront']);
    const original = await readFile(src);
    const before = await readInitrd(original);
    expect(before.flavour).toBe('initramfs-tools');
    expect(before.moduleNames).toContain('xen_blkfront');
    expect(before.moduleNames).not.toContain('virtio_blk');
    expect(before.segments[before.segments.length - 1]!.compression).toBe('zstd');
    const { bytes, plan, kept } = await inject(tree, original, ['virtio_blk', 'virtio_pci']);
    expect(plan.modules.map((m) => m.name)).toEqual(['virtio_ring', 'virtio', 'virtio_blk', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci']);
    // What comes before the main archive (an early cpio, if any) is kept, untouched.
    expect(Buffer.compare(Buffer.from(bytes.subarray(0, kept)), original.subarray(0, kept))).toBe(0);
    const img = join(tmp.path, 'it.img');
    await writeFile(img, bytes);
    const root = await checkExtracted(tree, img, kept, plan, 'it');
    // The original's own members are still there.
    expect((await run('lsinitramfs', [img])).stdout).toContain('xen-blkfront.ko');
    const conf = await readFile(join(root, 'conf/modules'), 'utf8');
    expect(conf.trim().split('\n').slice(-2)).toEqual(['virtio_blk', 'virtio_pci']);
    expect(conf).toContain('xen-blkfront');
    const after = await readInitrd(bytes);
    expect(after.moduleNames).toEqual(expect.arrayContaining(['virtio_blk', 'virtio_pci', 'xen_blkfront']));
  }, 240_000);

  it('dracut (--no-hostonly, only xen-blkfront): modules, indexes and rd.driver.pre in etc/cmdline.d', async (ctx) => {
    requireTools(ctx, 'lsinitramfs', 'unmkinitramfs', 'modprobe');
    const tree = await debianModuleTree(ctx);
    const src = await builtInitrd(ctx, 'dracut', ['xen-blkfront']);
    const original = await readFile(src);
    const before = await readInitrd(original);
    expect(before.flavour).toBe('dracut');
    expect(before.moduleNames).not.toContain('virtio_blk');
    const { bytes, plan, kept } = await inject(tree, original, ['virtio_blk', 'virtio_pci']);
    // dracut already has virtio and virtio_ring (virtiofs needs them).
    expect(plan.modules.map((m) => m.name)).toEqual(['virtio_blk', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci']);
    const img = join(tmp.path, 'dr.img');
    await writeFile(img, bytes);
    const root = await checkExtracted(tree, img, kept, plan, 'dr');
    expect(await readFile(join(root, 'etc/cmdline.d/90-amitrans.conf'), 'utf8')).toBe('rd.driver.pre=virtio_blk,virtio_pci\n');
  }, 240_000);
});

describe('nash (RHEL 5 mkinitrd)', () => {
  it('insmod lines go after the last insmod, before mkrootdev, in dependency order; the root device follows the target', () => {
    const init = [
      '#!/bin/nash',
      'mount -t proc /proc /proc',
      'echo "Loading xenblk.ko module"',
      'insmod /lib/xenblk.ko',
      'echo "Loading jbd.ko module"',
      'insmod /lib/jbd.ko',
      'echo Creating root device.',
      'mkrootdev -t ext3 -o defaults,ro /dev/xvda1',
      'switchroot',
      '',
    ].join('\n');
    expect(nashInsertInsmods(init, ['virtio.ko', 'virtio_ring.ko', 'virtio_pci.ko', 'virtio_blk.ko'], '/dev/vda1')).toBe([
      '#!/bin/nash',
      'mount -t proc /proc /proc',
      'echo "Loading xenblk.ko module"',
      'insmod /lib/xenblk.ko',
      'echo "Loading jbd.ko module"',
      'insmod /lib/jbd.ko',
      'echo "Loading virtio.ko module"',
      'insmod /lib/virtio.ko',
      'echo "Loading virtio_ring.ko module"',
      'insmod /lib/virtio_ring.ko',
      'echo "Loading virtio_pci.ko module"',
      'insmod /lib/virtio_pci.ko',
      'echo "Loading virtio_blk.ko module"',
      'insmod /lib/virtio_blk.ko',
      'echo Creating root device.',
      'mkrootdev -t ext3 -o defaults,ro /dev/vda1',
      'switchroot',
      '',
    ].join('\n'));
    expect(nashInsertInsmods('#!/bin/nash\necho Creating root device.\nmkrootdev -t ext3 -o defaults LABEL=/\n', ['a.ko'], '/dev/vda1')).toBe(
      '#!/bin/nash\necho "Loading a.ko module"\ninsmod /lib/a.ko\necho Creating root device.\nmkrootdev -t ext3 -o defaults LABEL=/\n');
    expect(nashInsertInsmods('#!/bin/nash\nswitchroot\n', ['a.ko'])).toBeUndefined();
  });

  it('a synthetic RHEL 5 initrd: modules flat in /lib, insmod lines in dependency order, the new /init replaces the old', async () => {
    const K = '2.6.18-398.el5';
    const init = '#!/bin/nash\nmount -t proc /proc /proc\necho "Loading ext3.ko module"\ninsmod /lib/ext3.ko\necho Creating root device.\nmkrootdev -t ext3 -o defaults,ro /dev/xvda1\nswitchroot\n';
    const enc = new TextEncoder();
    const original = gzipSync(writeNewcArchive([
      { path: 'init', type: 'file', mode: 0o755, data: enc.encode(init) },
      { path: 'bin/nash', type: 'file', mode: 0o755, data: enc.encode('ELF') },
      { path: 'lib/ext3.ko', type: 'file', data: enc.encode('ext3') },
    ]));
    const guest = {
      dep: [
        `/lib/modules/${K}/kernel/fs/ext3/ext3.ko: /lib/modules/${K}/kernel/fs/jbd/jbd.ko`,
        `/lib/modules/${K}/kernel/fs/jbd/jbd.ko:`,
        `/lib/modules/${K}/kernel/drivers/virtio/virtio.ko:`,
        `/lib/modules/${K}/kernel/drivers/virtio/virtio_ring.ko:`,
        `/lib/modules/${K}/kernel/drivers/virtio/virtio_pci.ko: /lib/modules/${K}/kernel/drivers/virtio/virtio_ring.ko /lib/modules/${K}/kernel/drivers/virtio/virtio.ko`,
        `/lib/modules/${K}/kernel/drivers/block/virtio_blk.ko: /lib/modules/${K}/kernel/drivers/virtio/virtio_ring.ko /lib/modules/${K}/kernel/drivers/virtio/virtio.ko`,
        '',
      ].join('\n'),
    };
    const initrd = await readInitrd(original);
    expect(initrd.flavour).toBe('nash');
    const plan = planInjection({ initrd, initrdPath: `/boot/initrd-${K}.img`, kernel: K, want: ['virtio_blk', 'virtio_pci'], guest, rootDevice: '/dev/vda1' });
    expect(plan.modules.map((m) => m.target)).toEqual(['lib/virtio.ko', 'lib/virtio_ring.ko', 'lib/virtio_blk.ko', 'lib/virtio_pci.ko']);
    const bytes = new Map(plan.modules.map((m) => [m.source, enc.encode(m.name)]));
    const out = appendSegment(original, injectionArchive(plan, bytes));
    const after = await readInitrd(out);
    expect(after.textFiles['/init']).toBe([
      '#!/bin/nash',
      'mount -t proc /proc /proc',
      'echo "Loading ext3.ko module"',
      'insmod /lib/ext3.ko',
      'echo "Loading virtio.ko module"',
      'insmod /lib/virtio.ko',
      'echo "Loading virtio_ring.ko module"',
      'insmod /lib/virtio_ring.ko',
      'echo "Loading virtio_blk.ko module"',
      'insmod /lib/virtio_blk.ko',
      'echo "Loading virtio_pci.ko module"',
      'insmod /lib/virtio_pci.ko',
      'echo Creating root device.',
      'mkrootdev -t ext3 -o defaults,ro /dev/vda1',
      'switchroot',
      '',
    ].join('\n'));
    expect(after.entries.filter((e) => e.path === '/init').map((e) => e.mode & 0o777)).toEqual([0o755, 0o755]);
    expect(after.moduleNames).toEqual(['ext3', 'virtio', 'virtio_blk', 'virtio_pci', 'virtio_ring']);
  });

  it('refuses what it cannot do, naming kernel and initrd: unknown flavour, a module not in /lib/modules, compressed modules for nash', async () => {
    const enc = new TextEncoder();
    const busybox = gzipSync(writeNewcArchive([{ path: 'init', type: 'file', data: enc.encode('#!/bin/busybox sh\n') }, { path: 'bin/busybox', type: 'file', data: enc.encode('x') }]));
    const req = { initrdPath: '/boot/initrd.img-1', kernel: '1', want: ['virtio_blk'], guest: { dep: 'kernel/virtio_blk.ko.xz:\n' } };
    const bb = await readInitrd(busybox);
    const err = (f: () => unknown): string => { try { f(); return 'no error'; } catch (e) { expect(e).toBeInstanceOf(ImageError); return (e as Error).message; } };
    expect(err(() => planInjection({ ...req, initrd: bb }))).toContain('initrd /boot/initrd.img-1 of kernel 1: its flavour is busybox, whose module loading is not known; modules are added only to initramfs-tools, dracut and nash (RHEL 5 mkinitrd) initrds (use --skip initrd to translate without adding modules to it)');
    const nash = gzipSync(writeNewcArchive([{ path: 'init', type: 'file', data: enc.encode('#!/bin/nash\nmkrootdev /dev/xvda1\n') }]));
    const ns = await readInitrd(nash);
    expect(err(() => planInjection({ ...req, initrd: ns }))).toMatch(/kernel\/virtio_blk\.ko\.xz is compressed, and nash's insmod loads only plain \.ko files/);
    expect(err(() => planInjection({ ...req, want: ['nvme'], initrd: ns }))).toMatch(/of kernel 1: nvme is not in \/lib\/modules\/1/);
  });

  it('dracut 004 (Amazon Linux 1): rdloaddriver= appended to a full /etc/cmdline; newer dracut: rd.driver.pre= in etc/cmdline.d', async () => {
    const enc = new TextEncoder();
    const K = '3.4.62-53.42.amzn1.x86_64';
    const guest = { dep: `kernel/drivers/block/virtio_blk.ko:\nkernel/drivers/block/xen-blkfront.ko:\n` };
    const make = (version: string): Uint8Array => gzipSync(writeNewcArchive([
      { path: 'init', type: 'file', mode: 0o755, data: enc.encode('#!/bin/sh\n# dracut init\n') },
      { path: `lib/dracut/dracut-${version}`, type: 'file', data: enc.encode(version) },
      { path: 'etc/cmdline', type: 'file', data: enc.encode('rd_NO_LUKS rd_NO_MD') },
      { path: `lib/modules/${K}/kernel/drivers/block/xen-blkfront.ko`, type: 'file', data: enc.encode('x') },
      { path: `lib/modules/${K}/modules.dep`, type: 'file', data: enc.encode('kernel/drivers/block/xen-blkfront.ko:\n') },
    ]));
    const old = planInjection({ initrd: await readInitrd(make('004')), initrdPath: '/boot/initramfs.img', kernel: K, want: ['virtio_blk'], guest });
    expect(old.files.find((f) => f.path === 'etc/cmdline')?.data).toEqual(enc.encode('rd_NO_LUKS rd_NO_MD\nrdloaddriver=virtio_blk\n'));
    expect(old.files.some((f) => f.path.startsWith('etc/cmdline.d'))).toBe(false);
    expect(old.modules.map((m) => m.target)).toEqual([`lib/modules/${K}/kernel/drivers/block/virtio_blk.ko`]);
    const dep = old.files.find((f) => f.path === `lib/modules/${K}/modules.dep`)?.data;
    expect(Buffer.from(dep!).toString()).toBe('kernel/drivers/block/virtio_blk.ko:\nkernel/drivers/block/xen-blkfront.ko:\n');
    const newer = planInjection({ initrd: await readInitrd(make('033')), initrdPath: '/boot/initramfs.img', kernel: K, want: ['virtio_blk'], guest });
    expect(newer.files.find((f) => f.path === 'etc/cmdline.d/90-amitrans.conf')?.data).toEqual(enc.encode('rd.driver.pre=virtio_blk\n'));
  });
});
