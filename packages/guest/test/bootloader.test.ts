import { describe, expect, it } from 'vitest';
import { kernelConfig } from '@amitrans/testkit';
import { chooseBootloader, grub2Version, inspectGuest, installGrubStages, NO_BOOTLOADER, type GuestReport, type WritableGuestFs } from '../src/index.js';
import { MemFs } from './memfs.js';

const EXT3 = { type: 'ext3', label: 'root', uuid: 'u', inodeSize: 128, features: ['has_journal'] };
const EXT4 = { type: 'ext4', label: 'root', uuid: 'u', inodeSize: 256, features: ['has_journal', 'extent', '64bit'] };
/** Stock 0.97 stage 1.5 (no extent magic) and Debian's ext4-capable one (carries 0xF30A). */
const STOCK_STAGE = new Uint8Array(1024).fill(0x78);
const EXT4_STAGE = Uint8Array.from(STOCK_STAGE, (b, i) => (i === 600 ? 0x0a : i === 601 ? 0xf3 : b));
const GRUB2_FILES = ['boot.img', 'diskboot.img', 'lzma_decompress.img', 'kernel.img', 'moddep.lst', 'ext2.mod', 'part_msdos.mod', 'biosdisk.mod'];

function guest(o: { stage?: Uint8Array; grub2Dir?: string; normal?: string }): MemFs {
  const fs = new MemFs()
    .file('/boot/vmlinuz-k', 'k').file('/boot/config-k', kernelConfig({ VIRTIO_BLK: 'y', VIRTIO_PCI: 'y', EXT4_FS: 'y', ATA_PIIX: 'y', BLK_DEV_SD: 'y' }))
    .file('/etc/fstab', 'LABEL=root / ext4 defaults 1 1\n');
  if (o.stage !== undefined) fs.file('/boot/grub/stage1', 's').file('/boot/grub/stage2', 's').file('/boot/grub/e2fs_stage1_5', o.stage);
  if (o.grub2Dir) {
    for (const f of GRUB2_FILES) fs.file(`${o.grub2Dir}/${f}`, 'x');
    fs.file(`${o.grub2Dir}/normal.mod`, o.normal ?? '\x7fELF\0GNU GRUB  version %s\x002.02~beta2-36ubuntu3.32\0x');
  }
  return fs;
}

async function report(fs: MemFs, filesystem = EXT3): Promise<GuestReport> {
  return inspectGuest(fs, { layout: 'bare-filesystem', filesystem });
}

describe('which GRUB a disk build installs', () => {
  it('the guest\'s GRUB legacy when its stage files read the filesystem (what the distribution used)', async () => {
    const r = await report(guest({ stage: STOCK_STAGE, grub2Dir: '/usr/lib/grub/i386-pc' }));
    expect(chooseBootloader(r, { hostGrub2: '/usr/lib/grub/i386-pc' })).toMatchObject({ kind: 'grub-legacy', from: '/boot/grub', source: 'guest' });
    expect(r.verdicts.find((v) => v.target === 'kvm')!.changes[0]).toMatch(/install GRUB legacy from \/boot\/grub/);
  });

  it('GRUB 2 when stock stage files cannot read ext4 extents; Debian\'s ext4-capable stage files still can', async () => {
    const stock = await report(guest({ stage: STOCK_STAGE, grub2Dir: '/usr/lib/grub/i386-pc' }), EXT4);
    expect(chooseBootloader(stock)).toEqual({ kind: 'grub2', from: '/usr/lib/grub/i386-pc', source: 'guest', why: 'the filesystem uses extents, which these GRUB legacy stage files cannot read; the guest\'s own GRUB 2 2.02~beta2-36ubuntu3.32' });
    const debian = await report(guest({ stage: EXT4_STAGE, grub2Dir: '/usr/lib/grub/i386-pc' }), EXT4);
    expect(debian.grubStages?.readsExt4).toBe(true);
    expect(chooseBootloader(debian)).toMatchObject({ kind: 'grub-legacy' });
    // No GRUB 2 anywhere: the reason says both what failed and what to install.
    const noGrub2 = await report(guest({ stage: STOCK_STAGE }), EXT4);
    expect(chooseBootloader(noGrub2).why).toMatch(/extents, which these GRUB legacy stage files cannot read, and no GRUB 2 is available: install grub-pc-bin/);
  });

  it('the guest\'s GRUB 2, then the host\'s; --grub-dir wins; --bootloader forces or fails', async () => {
    const r = await report(guest({ grub2Dir: '/boot/grub2/i386-pc' }));
    expect(r.grub2).toEqual({ dir: '/boot/grub2/i386-pc', version: '2.02~beta2-36ubuntu3.32', modules: 4 });
    expect(chooseBootloader(r, { hostGrub2: '/host' })).toMatchObject({ kind: 'grub2', from: '/boot/grub2/i386-pc', source: 'guest' });
    const bare = await report(guest({}));
    expect(chooseBootloader(bare, { hostGrub2: '/host' })).toMatchObject({ kind: 'grub2', from: '/host', source: 'host' });
    expect(chooseBootloader(bare)).toEqual({ why: NO_BOOTLOADER });
    expect(bare.verdicts.find((v) => v.target === 'kvm')).toMatchObject({ status: 'will-not-boot', reasons: [NO_BOOTLOADER] });
    expect(chooseBootloader(bare, { grubDir: { path: '/g', kind: 'grub-legacy' }, hostGrub2: '/host' })).toMatchObject({ kind: 'grub-legacy', source: 'grub-dir' });
    expect(chooseBootloader(bare, { grubDir: { path: '/g', kind: 'grub-legacy' }, force: 'grub2' }).why).toMatch(/--bootloader grub2, but --grub-dir \/g holds grub-legacy files/);
    const legacy = await report(guest({ stage: STOCK_STAGE, grub2Dir: '/usr/lib/grub/i386-pc' }));
    expect(chooseBootloader(legacy, { force: 'grub2' })).toMatchObject({ kind: 'grub2', why: expect.stringMatching(/^--bootloader grub2; the guest's own GRUB 2/) });
    expect(chooseBootloader(r, { force: 'grub-legacy', hostGrub2: '/host' }).why).toMatch(/--bootloader grub-legacy, but the image has no GRUB legacy stage files/);
  });

  it('GRUB 1.99 (no lzma_decompress.img) is not taken for GRUB 2', async () => {
    const fs = guest({ grub2Dir: '/usr/lib/grub/i386-pc' });
    fs.nodes.delete('/usr/lib/grub/i386-pc/lzma_decompress.img');
    const r199 = await report(fs);
    expect(r199.grub2).toBeUndefined();
  });

  it('the version string in normal.mod', () => {
    expect(grub2Version(Buffer.from('\0GNU GRUB  version %s\x002.06-13+deb12u2\0'))).toBe('2.06-13+deb12u2');
    expect(grub2Version(Buffer.from('\0nothing here\0'))).toBeUndefined();
  });
});

/** MemFs that takes the writes a step makes (files and directories; enough for the stage files). */
class WritableMemFs extends MemFs implements WritableGuestFs {
  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    if (!this.nodes.has(path.slice(0, path.lastIndexOf('/')) || '/')) throw new Error(`no directory for ${path}`);
    this.file(path, data);
  }
  async mkdir(path: string): Promise<void> {
    this.mkdirs(path);
  }
  async unlink(path: string): Promise<void> {
    this.nodes.delete(path);
  }
  async symlink(target: string, path: string): Promise<void> {
    this.link(path, target);
  }
}

describe('the GRUB legacy stage files step', () => {
  const source = { stage1: Buffer.from('one'), stage2: Buffer.from('two'), e2fs_stage1_5: Buffer.from('one and a half'), from: '/usr/lib/grub/x86_64-pc' };
  const bytes = (fs: MemFs, path: string): string | undefined => {
    const n = fs.nodes.get(path);
    return n?.type === 'file' ? Buffer.from(n.data).toString() : undefined;
  };

  it('puts stage1, stage2 and e2fs_stage1_5 in /boot/grub and reports each; a dry run reports the same and writes nothing', async () => {
    const dry = new WritableMemFs().file('/boot/grub/stage2', 'old');
    const reported = await installGrubStages({ fs: dry, dryRun: true }, source, true);
    expect(dry.nodes.has('/boot/grub/stage1')).toBe(false);
    const fs = new WritableMemFs().file('/boot/grub/stage2', 'old');
    const changes = await installGrubStages({ fs, dryRun: false }, source, true);
    expect(changes).toEqual(reported);
    expect(changes.map((c) => `${c.action} ${c.file}`)).toEqual(['create /boot/grub/stage1', 'edit /boot/grub/stage2', 'create /boot/grub/e2fs_stage1_5']);
    expect(changes.every((c) => c.step === 'bootloader' && c.why.includes('/usr/lib/grub/x86_64-pc'))).toBe(true);
    expect([bytes(fs, '/boot/grub/stage1'), bytes(fs, '/boot/grub/stage2'), bytes(fs, '/boot/grub/e2fs_stage1_5')]).toEqual(['one', 'two', 'one and a half']);
    expect(await installGrubStages({ fs, dryRun: false }, source, true)).toEqual([]);
  });

  it('changes nothing when the guest\'s own stage files are in /boot/grub already, and makes /boot/grub when it is missing', async () => {
    const own = new WritableMemFs().file('/boot/grub/stage1', 'x');
    expect(await installGrubStages({ fs: own, dryRun: false }, { ...source, from: '/boot/grub' }, true)).toEqual([]);
    expect(bytes(own, '/boot/grub/stage1')).toBe('x');
    const bare = new WritableMemFs();
    expect(await installGrubStages({ fs: bare, dryRun: false }, { ...source, from: '/boot/grub' }, false)).toHaveLength(3);
    expect(bytes(bare, '/boot/grub/stage2')).toBe('two');
  });
});
