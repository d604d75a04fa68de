import { existsSync } from 'node:fs';
import { copyFile, mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDebianAmi, requireTools, run, sha256File, tmpDir, type TmpDir } from '@amitrans/testkit';
import { ImageError } from '@amitrans/block';
import { translate, type TranslateResult, type VerifyResult } from '@amitrans/diskimg';
import { cli, expectDryRunEqualsRun } from './helpers.js';

// Three PV AMIs from Debian packages without GRUB legacy's stage files: two carrying
// grub-pc-bin's i386-pc files in /usr/lib/grub/i386-pc and a menu.lst symlinked to grub.cfg
// (Debian bootstrap-vz style), one ext3 and one ext4 (extents, 64bit, 256-byte inodes); one
// ext3 with no bootloader files at all and an empty /boot/grub2 (RHEL 7 style: GRUB 2's
// files and prefix go there). Each (fixture, target) pair is translated once and boots
// once, through `amitrans verify`, to the fixture's marker.
let dir: TmpDir;
const fixtures = new Map<string, Promise<{ path: string; hash: string }>>();
const PART_OFFSET = 2048 * 512;
const BIOS_SETUP = '/usr/lib/grub/i386-pc/grub-bios-setup';
type Ctx = { skip: (note?: string) => void };

type Kind = 'grub2-ext4' | 'grub2-ext3' | 'none';

async function fixture(ctx: Ctx, kind: Kind): Promise<string> {
  requireTools(ctx, 'mkfs.ext4', 'depmod', 'cpio');
  if (kind !== 'none' && !existsSync('/usr/lib/grub/i386-pc/kernel.img')) requireTools(ctx, 'grub-mkimage');
  let p = fixtures.get(kind);
  if (!p) {
    p = (async () => {
      const path = dir.file(`${kind}.img`);
      const extra = dir.file(`${kind}-extra`);
      await mkdir(`${extra}/boot/grub2`, { recursive: true });
      await buildDebianAmi(ctx, path, kind === 'grub2-ext4' ? { grub2: true, ext4: true } : kind === 'grub2-ext3' ? { grub2: true } : { grubStages: false, extra });
      return { path, hash: await sha256File(path) };
    })();
    fixtures.set(kind, p);
  }
  return (await p).path;
}

beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(async () => {
  // The inputs are never written.
  for (const p of fixtures.values()) {
    const f = await p.catch(() => undefined);
    if (f) expect(await sha256File(f.path)).toBe(f.hash);
  }
  await dir?.remove();
});

async function translateJson(input: string, ...args: string[]): Promise<TranslateResult> {
  const r = await cli('translate', input, ...args, '--json');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as TranslateResult;
}

function expectBooted(output: string, fsType: string): void {
  expect(output).toMatch(/AMITRANS-BOOT-OK kernel=6\.1\.\d+-\d+-cloud-amd64/);
  // GRUB 2 ran our grub.cfg: the kernel saw its root= and both consoles.
  expect(output).toMatch(/cmdline=BOOT_IMAGE=\/boot\/vmlinuz-\S+ root=UUID=3d1e5c2a-7b4f-4a8e-9c6d-5f0e1a2b3c4d ro console=tty0 console=ttyS0,115200n8/);
  const fstab = /--- \/etc\/fstab ---\r?\n([\s\S]*?)--- end ---/.exec(output)?.[1] ?? '';
  expect(fstab).toMatch(new RegExp(`^UUID=\\S+\\s+/\\s+${fsType}`, 'm'));
}

/** The translated busybox guest prints its marker, then /etc/fstab, then this line, and powers off. */
const END = '[-]{3} end [-]{3}';

/** `amitrans verify` boots `image` as its target does, to the end of the marker; the console log is checked too. */
async function verifyBoots(image: string, target: 'kvm' | 'virtualbox', fsType: string): Promise<VerifyResult> {
  const log = `${image}.log`;
  const r = await cli('verify', image, '--expect', END, '--log', log, '--json');
  expect(r.stderr).toBe('');
  const result = JSON.parse(r.stdout) as VerifyResult;
  expect(result, result.lastLines.join('\n')).toMatchObject({ result: 'booted', target, bus: target === 'kvm' ? 'virtio' : 'ide' });
  expect(r.code).toBe(0);
  expect(result.milestones.map((m) => m.name)).toEqual(expect.arrayContaining(['kernel', 'root-mounted', 'expected']));
  expectBooted(await readFile(log, 'latin1'), fsType);
  return result;
}

async function debugfs(img: string, cmd: string): Promise<string> {
  return (await run('debugfs', ['-R', cmd, `${img}?offset=${PART_OFFSET}`])).stdout;
}

/** The ext4 guest translated for kvm as raw, made once and shared. */
let made: Promise<{ out: string; r: TranslateResult }> | undefined;
async function kvmRaw(ctx: Ctx): Promise<{ out: string; r: TranslateResult }> {
  const src = await fixture(ctx, 'grub2-ext4');
  made ??= (async () => {
    const out = dir.file('grub2-kvm.raw');
    return { out, r: await translateJson(src, out, '-t', 'kvm', '-O', 'raw') };
  })();
  return made;
}

describe('GRUB 2 for a guest with its own i386-pc files on ext4 (extents, 64bit, 256-byte inodes)', () => {

  it('--dry-run: the change report names GRUB 2, where from and why; nothing written', async (ctx) => {
    const out = dir.file('dry.raw');
    const r = await translateJson(await fixture(ctx, 'grub2-ext4'), out, '-t', 'kvm', '--dry-run');
    expect(r.bootloader).toEqual({ kind: 'grub2', from: '/usr/lib/grub/i386-pc', source: 'guest', why: expect.stringMatching(/no GRUB legacy stage files; the guest's own GRUB 2 2\.\d\d/) });
    const disk = r.changes.find((c) => c.step === 'bootloader' && c.file.startsWith('(disk'));
    expect(disk?.why).toMatch(/^GRUB 2 from \/usr\/lib\/grub\/i386-pc in the image/);
    expect(disk?.after?.[0]).toMatch(/core\.img \(\d+ bytes, 5\d sectors, modules fshelp ext2 part_msdos biosdisk, prefix \(,msdos1\)\/boot\/grub\)/);
    expect(r.changes.map((c) => `${c.action} ${c.file}`)).toEqual(expect.arrayContaining(['create /boot/grub/i386-pc/', 'edit /boot/grub/menu.lst', 'edit /boot/grub/grub.cfg']));
    expect(r.verdict.changes[0]).toMatch(/install GRUB 2 from \/usr\/lib\/grub\/i386-pc/);
    expect(existsSync(out)).toBe(false);
    // inspect says the same, and reports the guest's GRUB 2.
    const i = await cli('inspect', await fixture(ctx, 'grub2-ext4'));
    expect(i.stdout).toMatch(/GRUB 2 \(i386-pc\): 2\.\d\d\S* in \/usr\/lib\/grub\/i386-pc, \d+ modules/);
    expect(i.stdout).toMatch(/install GRUB 2 from \/usr\/lib\/grub\/i386-pc/);
  }, 300_000);

  it('translate --target kvm boots through verify to the marker, with a sector of the embedded core.img zeroed (Reed-Solomon repairs it)', async (ctx) => {
    requireTools(ctx, 'qemu-system-x86_64');
    const { out, r } = await kvmRaw(ctx);
    expect(r.bootloader?.kind).toBe('grub2');
    // One boot proves both: the repaired core is byte for byte the translated one.
    const damaged = dir.file('grub2-kvm-damaged.raw');
    await copyFile(out, damaged);
    const fh = await open(damaged, 'r+');
    await fh.write(Buffer.alloc(512), 0, 512, 30 * 512); // inside the LZMA payload
    await fh.close();
    await verifyBoots(damaged, 'kvm', 'ext4');
  }, 600_000);

  it('e2fsck -fn clean; menu.lst is a regular file with the pv-grub menu; grub.cfg and the modules are in /boot/grub', async (ctx) => {
    requireTools(ctx, 'e2fsck', 'debugfs');
    const { out } = await kvmRaw(ctx);
    await run('e2fsck', ['-fn', `${out}?offset=${PART_OFFSET}`]);
    expect(await debugfs(out, 'stat /boot/grub/menu.lst')).toMatch(/Type: regular/);
    expect(await debugfs(out, 'cat /boot/grub/menu.lst')).toMatch(/^kernel \/boot\/vmlinuz-\S+ .*console=ttyS0/m);
    expect(await debugfs(out, 'cat /boot/grub/grub.cfg')).toMatch(/^menuentry /m);
    expect(await debugfs(out, 'ls -l /boot/grub/i386-pc')).toMatch(/normal\.mod/);
  }, 300_000);
});

describe('the translated GRUB 2 disk against grub-bios-setup and a second target', () => {
  it('its first 2048 sectors equal what grub-bios-setup writes with the same core.img on the same disk', async (ctx) => {
    requireTools(ctx, 'unshare');
    if (!existsSync(BIOS_SETUP)) requireTools(ctx, BIOS_SETUP);
    const { out, r } = await kvmRaw(ctx);
    const size = Number(/core\.img \((\d+) bytes/.exec(r.changes.find((c) => c.file.startsWith('(disk'))!.after![0]!)![1]);
    const ours = await readFile(out);
    const theirs = dir.file('grub2-bios-setup.raw');
    await copyFile(out, theirs);
    // Wipe what we wrote before the partition (but the partition table), then let grub-bios-setup write it.
    const fh = await open(theirs, 'r+');
    await fh.write(Buffer.alloc(PART_OFFSET - 512), 0, PART_OFFSET - 512, 512);
    await fh.write(Buffer.alloc(440), 0, 440, 0);
    await fh.close();
    const d = dir.file('setup-dir');
    await mkdir(d);
    await writeFile(`${d}.core`, ours.subarray(512, 512 + size));
    await writeFile(`${d}.map`, `(hd0) ${theirs}\n`);
    await run('unshare', ['-m', 'sh', '-c',
      `mount -t tmpfs "$1" "$2" && cp /usr/lib/grub/i386-pc/boot.img "$2/" && cp "$2.core" "$2/core.img" && ${BIOS_SETUP} -d "$2" -m "$2.map" "$1"`, 'sh', theirs, d]);
    const after = await readFile(theirs);
    expect(Buffer.compare(ours.subarray(0, PART_OFFSET), after.subarray(0, PART_OFFSET))).toBe(0);
    expect(Buffer.compare(ours.subarray(PART_OFFSET), after.subarray(PART_OFFSET))).toBe(0);
  }, 300_000);

  it('translate --target virtualbox of the ext4 guest boots through verify (VDI, IDE)', async (ctx) => {
    requireTools(ctx, 'qemu-system-x86_64');
    const out = dir.file('grub2-ext4.vdi');
    const r = await translateJson(await fixture(ctx, 'grub2-ext4'), out, '-t', 'virtualbox');
    expect(r.bootloader).toMatchObject({ kind: 'grub2', source: 'guest' });
    await verifyBoots(out, 'virtualbox', 'ext4');
  }, 600_000);
});

describe('GRUB 2 for a guest with its own i386-pc files on ext3 (the boot fixture without its stage files)', () => {
  for (const [target, name] of [['kvm', 'grub2-ext3-kvm.qcow2'], ['virtualbox', 'grub2-ext3.vdi']] as const) {
    it(`translate --target ${target} installs the guest's GRUB 2 and boots through verify`, async (ctx) => {
      requireTools(ctx, 'qemu-system-x86_64');
      const out = dir.file(name);
      const r = await translateJson(await fixture(ctx, 'grub2-ext3'), out, '-t', target);
      expect(r.bootloader).toMatchObject({ kind: 'grub2', from: '/usr/lib/grub/i386-pc', source: 'guest' });
      expect(r.changes.find((c) => c.file.startsWith('(disk'))!.after![0]).toMatch(/prefix \(,msdos1\)\/boot\/grub\)/);
      await verifyBoots(out, target, 'ext3');
    }, 600_000);
  }
});

describe('GRUB 2 from the host for a guest with no bootloader files', () => {
  it('--grub-dir with GRUB 2 files (the i386-pc directory or its parent) is used and named', async (ctx) => {
    requireTools(ctx, 'grub-mkimage');
    const src = await fixture(ctx, 'none');
    // The parent of i386-pc is taken as well.
    const r = await translateJson(src, dir.file('gd.raw'), '-t', 'kvm', '--grub-dir', '/usr/lib/grub', '--dry-run');
    expect(r.bootloader).toEqual({ kind: 'grub2', from: '/usr/lib/grub/i386-pc', source: 'grub-dir', why: 'given with --grub-dir' });
    // A guest with /boot/grub2 (RHEL 7 style) gets grub.cfg, the modules and the prefix there.
    expect(r.changes.map((c) => c.file)).toEqual(expect.arrayContaining(['/boot/grub2/i386-pc/', '/boot/grub2/grub.cfg']));
    expect(r.changes.find((c) => c.file.startsWith('(disk'))!.after![0]).toMatch(/prefix \(,msdos1\)\/boot\/grub2\)/);
  }, 300_000);

  for (const [target, name] of [['kvm', 'host-grub2-kvm.qcow2'], ['virtualbox', 'host-grub2.vdi']] as const) {
    it(`translate --target ${target} boots through verify with the host's grub-pc-bin, prefix /boot/grub2`, async (ctx) => {
      requireTools(ctx, 'qemu-system-x86_64');
      const out = dir.file(name);
      const r = await translateJson(await fixture(ctx, 'none'), out, '-t', target);
      expect(r.bootloader).toMatchObject({ kind: 'grub2', from: '/usr/lib/grub/i386-pc', source: 'host' });
      expect(r.changes.find((c) => c.file.startsWith('(disk'))!.after![0]).toMatch(/prefix \(,msdos1\)\/boot\/grub2\)/);
      await verifyBoots(out, target, 'ext3');
    }, 600_000);
  }

  it('no GRUB anywhere: a typed error naming what to install or pass; nothing written', async (ctx) => {
    const out = dir.file('none.raw');
    const err = await translate(await fixture(ctx, 'none'), out, { target: 'kvm', hostGrubDirs: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).code).toBe('E_UNSUPPORTED');
    expect((err as ImageError).message).toMatch(/will not boot on kvm: no bootloader .*install grub-pc-bin \(Debian, Ubuntu\) or grub2-pc-modules \(Fedora, RHEL\), or give --grub-dir DIR/);
    expect(existsSync(out)).toBe(false);
  }, 300_000);

  it('--bootloader grub-legacy without stage files: exit 1, says what to pass, nothing written', async (ctx) => {
    const out = dir.file('legacy.raw');
    const r = await cli('translate', await fixture(ctx, 'none'), out, '-t', 'kvm', '--bootloader', 'grub-legacy');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--bootloader grub-legacy, but the image has no GRUB legacy stage files: give them with --grub-dir/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(out)).toBe(false);
    // inspect with the same option says so in its verdict, before any translate.
    const seen = JSON.parse((await cli('inspect', await fixture(ctx, 'none'), '--bootloader', 'grub-legacy', '--json')).stdout) as { report: { verdicts: { target: string; status: string; reasons: string[] }[] } };
    const kvm = seen.report.verdicts.find((v) => v.target === 'kvm')!;
    expect(kvm.status).toBe('will-not-boot');
    expect(kvm.reasons.join('\n')).toMatch(/--bootloader grub-legacy, but the image has no GRUB legacy stage files/);
  }, 300_000);
});

describe('--dry-run on the GRUB 2 fixtures', () => {
  for (const kind of ['grub2-ext4', 'none'] as const) {
    it(`${kind}: lists exactly the changes the run makes, for every target`, async (ctx) => {
      const src = await fixture(ctx, kind);
      await expectDryRunEqualsRun(src, (k, target) => dir.file(`${kind}-${k}-${target}.img`));
    }, 600_000);
  }
});
