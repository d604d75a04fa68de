import { spawn, spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verify, type VerifyResult } from '@amitrans/diskimg';
import { buildDebianAmi, realDebianAmi, requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import { binary, cli, expectDryRunEqualsRun, inputGuard } from './helpers.js';

type Ctx = { skip: (note?: string) => void };
const PART = 2048 * 512;

let dir: TmpDir;
const guard = inputGuard();
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(async () => {
  // verify never writes its image, nor translate its input.
  await guard.expectUnchanged();
  await dir?.remove();
});

const remember = guard.remember;

async function translated(ctx: Ctx, input: string, name: string, ...args: string[]): Promise<string> {
  const out = dir.file(name);
  const r = await cli('translate', input, out, ...args);
  expect(r.code, r.stderr).toBe(0);
  return remember(out);
}

async function verifyJson(...args: string[]): Promise<{ code: number; result: VerifyResult }> {
  const r = await cli('verify', ...args, '--json');
  expect(r.stderr).toBe('');
  return { code: r.code, result: JSON.parse(r.stdout) as VerifyResult };
}

/** No QEMU left running on `path` (verify always reaps it). */
function noQemuOn(path: string): void {
  const found = spawnSync('pgrep', ['-f', `qemu-system.*${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`]);
  expect(found.status, String(found.stdout)).toBe(1);
}

function names(r: VerifyResult): string[] {
  return r.milestones.map((m) => m.name);
}

/** A file's text inside an ext filesystem at `offset` of a raw image (debugfs, the oracle). */
async function guestFile(image: string, offset: number, path: string): Promise<string> {
  return (await run('debugfs', ['-R', `cat ${path}`, offset ? `${image}?offset=${offset}` : image])).stdout;
}

/** translate --dry-run lists exactly what the run does, for `targets` (default every target). */
async function dryRunEqualsRun(input: string, name: string, targets?: readonly string[]): Promise<void> {
  await expectDryRunEqualsRun(input, (kind, target) => dir.file(`${name}-${kind}-${target}.img`), targets);
}

describe('the realistic Debian AMI (debootstrap, systemd, ifupdown eth0, openssh) answers ssh after translation', () => {
  let real: Promise<string> | undefined;
  async function ami(ctx: Ctx): Promise<string> {
    requireTools(ctx, 'qemu-system-x86_64', 'debugfs', 'ssh-keygen');
    real ??= realDebianAmi(ctx).then(remember);
    return real;
  }

  it('kvm: a raw disk on virtio boots through GRUB to sshd; the host keys are new ones that ssh-keygen reads', async (ctx) => {
    const input = await ami(ctx);
    const out = await translated(ctx, input, 'real-kvm.raw', '-t', 'kvm', '-O', 'raw');
    const log = dir.file('real-kvm.log');
    const { code, result } = await verifyJson(out, '--ssh', '--log', log);
    expect(result, result.lastLines.join('\n')).toMatchObject({ result: 'booted', target: 'kvm', mode: 'disk', bus: 'virtio', nic: 'virtio' });
    expect(code).toBe(0);
    expect(result.sshBanner).toMatch(/^SSH-2\.0-OpenSSH_/);
    expect(names(result)).toEqual(expect.arrayContaining(['bootloader', 'kernel', 'root-mounted', 'init', 'ssh']));
    expect(result.command).toEqual(expect.arrayContaining(['-device', 'virtio-blk-pci,drive=root']));
    expect(await readFile(log, 'latin1')).toMatch(/Linux version 6\.1/);
    noQemuOn(out);
    // Fresh keys: not the input's, and each private key derives its own public key.
    const inputPub = await guestFile(input, 0, '/etc/ssh/ssh_host_ed25519_key.pub');
    const outputPub = await guestFile(out, PART, '/etc/ssh/ssh_host_ed25519_key.pub');
    expect(outputPub.split(' ')[1]).not.toBe(inputPub.split(' ')[1]);
    for (const type of ['rsa', 'ecdsa', 'ed25519']) {
      const key = dir.file(`key-${type}`);
      await writeFile(key, await guestFile(out, PART, `/etc/ssh/ssh_host_${type}_key`), { mode: 0o600 });
      const derived = (await run('ssh-keygen', ['-y', '-f', key])).stdout.trim().split(' ').slice(0, 2).join(' ');
      expect(derived).toBe((await guestFile(out, PART, `/etc/ssh/ssh_host_${type}_key.pub`)).trim().split(' ').slice(0, 2).join(' '));
    }
    expect(await guestFile(out, PART, '/boot/grub/menu.lst')).toMatch(/ net\.ifnames=0 biosdevname=0/);
  }, 600_000);

  it('virtualbox: the OVA boots from its own IDE controller, with virtio-net (the cloud kernel has no e1000), and answers ssh', async (ctx) => {
    const input = await ami(ctx);
    const out = await translated(ctx, input, 'real-vbox.ova', '-t', 'virtualbox');
    const { code, result } = await verifyJson(out, '--ssh');
    expect(result, result.lastLines.join('\n')).toMatchObject({ result: 'booted', target: 'virtualbox', mode: 'disk', bus: 'ide', nic: 'virtio' });
    expect(code).toBe(0);
    expect(result.sshBanner).toMatch(/^SSH-2\.0-OpenSSH_/);
    expect(result.notes.join(' ')).toMatch(/sparse raw temporary/);
    noQemuOn(out);
  }, 600_000);

  it('eucalyptus: the node controller\'s direct kernel boot of the EMI answers ssh (eth0 kept by the initrd too)', async (ctx) => {
    const input = await ami(ctx);
    const out = await translated(ctx, input, 'real-emi.img', '-t', 'eucalyptus');
    const { code, result } = await verifyJson(out, '--ssh');
    expect(result.sshBanner).toMatch(/^SSH-2\.0-OpenSSH_/);
    expect(result, result.lastLines.join('\n')).toMatchObject({ result: 'booted', target: 'eucalyptus', mode: 'direct-kernel', bus: 'virtio' });
    expect(code).toBe(0);
    expect(names(result)).toEqual(expect.arrayContaining(['kernel', 'root-mounted', 'init', 'ssh']));
    expect(result.command).toEqual(expect.arrayContaining(['-append', expect.stringMatching(/^root=UUID=5b7c3f0e-\S+ console=ttyS0$/)]));
    noQemuOn(out);
  }, 600_000);

  // A disk target and the bare-filesystem one: the dry run and the run share every step
  // (only the write is skipped), and the busybox AMI below compares all four targets.
  it('--dry-run reports exactly the changes the run makes, for kvm and eucalyptus', async (ctx) => {
    await dryRunEqualsRun(await ami(ctx), 'real', ['kvm', 'eucalyptus']);
  }, 600_000);
});

describe('failures are classified from the console, fast, and QEMU is always reaped', () => {
  let busybox: Promise<{ ami: string; kvm: string }> | undefined;
  /** The busybox AMI translated for kvm (raw, so a test can patch a copy with debugfs). */
  async function small(ctx: Ctx): Promise<{ ami: string; kvm: string }> {
    requireTools(ctx, 'qemu-system-x86_64', 'debugfs', 'mkfs.ext3', 'depmod', 'cpio');
    busybox ??= (async () => {
      const ami = dir.file('bb-ami.img');
      await buildDebianAmi(ctx, ami);
      await remember(ami);
      return { ami, kvm: await translated(ctx, ami, 'bb-kvm.raw', '-t', 'kvm', '-O', 'raw') };
    })();
    return busybox;
  }

  /** A copy of the kvm disk whose menu.lst went through `edit`. */
  async function patched(ctx: Ctx, name: string, edit: (menu: string) => string): Promise<string> {
    const { kvm } = await small(ctx);
    const copy = dir.file(name);
    await run('cp', ['--sparse=always', kvm, copy]);
    const menu = dir.file(`${name}.menu.lst`);
    await writeFile(menu, edit(await guestFile(copy, PART, '/boot/grub/menu.lst')));
    await run('debugfs', ['-w', '-R', `rm /boot/grub/menu.lst`, `${copy}?offset=${PART}`]);
    await run('debugfs', ['-w', '-R', `write ${menu} /boot/grub/menu.lst`, `${copy}?offset=${PART}`]);
    return remember(copy);
  }

  it('the translated busybox AMI boots to its marker (--expect)', async (ctx) => {
    const { kvm } = await small(ctx);
    const { code, result } = await verifyJson(kvm, '--expect', 'AMITRANS-BOOT-OK kernel=');
    expect(result, result.lastLines.join('\n')).toMatchObject({ result: 'booted', target: 'kvm' });
    expect(code).toBe(0);
    expect(names(result)).toEqual(expect.arrayContaining(['bootloader', 'kernel', 'root-mounted', 'expected']));
  }, 300_000);

  it('--dry-run reports exactly the changes the run makes, for every target', async (ctx) => {
    await dryRunEqualsRun((await small(ctx)).ami, 'bb');
  }, 300_000);

  it('menu.lst still `root (hd0)` on a disk: grub-error 17', async (ctx) => {
    const img = await patched(ctx, 'bb-hd0.raw', (m) => m.replace(/root \(hd0,0\)/g, 'root (hd0)'));
    const { code, result } = await verifyJson(img, '--expect', 'AMITRANS-BOOT-OK');
    expect(result).toMatchObject({ result: 'failed', class: 'grub-error', detail: expect.stringMatching(/GRUB error 17: Cannot mount selected partition/) });
    expect(code).toBe(1);
    noQemuOn(img);
  }, 300_000);

  it('console=hvc0 left on the kernel line: no-console-output once GRUB has handed over', async (ctx) => {
    const img = await patched(ctx, 'bb-hvc0.raw', (m) => m.replace(/console=tty0 console=ttyS0,115200n8/, 'console=hvc0'));
    const result = await verify(img, { expect: /AMITRANS-BOOT-OK/, silence: 30 });
    expect(result).toMatchObject({ result: 'failed', class: 'no-console-output', detail: expect.stringMatching(/hvc0/) });
    expect(names(result)).toContain('bootloader');
    expect(names(result)).not.toContain('kernel');
    noQemuOn(img);
  }, 300_000);

  it('a wrong root=UUID: no-root-device, and the disk was seen, so root= is named', async (ctx) => {
    const img = await patched(ctx, 'bb-uuid.raw', (m) => m.replace(/root=UUID=[0-9a-f-]+/, 'root=UUID=00000000-0000-4000-8000-000000000000'));
    const { code, result } = await verifyJson(img, '--expect', 'AMITRANS-BOOT-OK');
    expect(result).toMatchObject({ result: 'failed', class: 'no-root-device', detail: expect.stringMatching(/found disk vda, so root=UUID=00000000-0000-4000-8000-000000000000/) });
    expect(code).toBe(1);
  }, 300_000);

  it('an initrd without the driver for the bus (AHCI): no-root-device, no disk appeared', async (ctx) => {
    const { kvm } = await small(ctx);
    const { code, result } = await verifyJson(kvm, '--bus', 'sata', '--expect', 'AMITRANS-BOOT-OK');
    expect(result).toMatchObject({ result: 'failed', class: 'no-root-device', bus: 'sata', detail: expect.stringMatching(/no disk appeared on the sata bus/) });
    expect(code).toBe(1);
  }, 300_000);

  it('a disk without boot code fails at once; a bare Xen filesystem cannot be verified here (exit 3)', async (ctx) => {
    const { ami, kvm } = await small(ctx);
    const empty = dir.file('bb-nombr.raw');
    await run('cp', ['--sparse=always', kvm, empty]);
    await run('dd', ['if=/dev/zero', `of=${empty}`, 'bs=440', 'count=1', 'conv=notrunc']);
    await remember(empty);
    const a = await verifyJson(empty);
    expect(a.result).toMatchObject({ result: 'failed', class: 'no-bootloader' });
    expect(a.code).toBe(1);
    const b = await verifyJson(ami);
    expect(b.result).toMatchObject({ result: 'not-verifiable', target: 'xenserver' });
    expect(b.code).toBe(3);
  }, 300_000);

  it('--timeout bounds the run; SIGINT kills QEMU and leaves nothing', async (ctx) => {
    const { kvm } = await small(ctx);
    const t = await verifyJson(kvm, '--timeout', '3', '--expect', 'NEVER-PRINTED');
    expect(t.code).toBe(1);
    expect(t.result.seconds).toBeLessThan(60);
    expect(['timeout', 'no-console-output']).toContain(t.result.class);
    noQemuOn(kvm);
    const child = spawn(process.execPath, [binary(), 'verify', kvm, '--expect', 'NEVER-PRINTED', '--timeout', '120'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 4000));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(130);
    await new Promise((r) => setTimeout(r, 500));
    noQemuOn(kvm);
  }, 300_000);

  it('without QEMU: exit 3 naming the package that brings it', async (ctx) => {
    const { kvm } = await small(ctx);
    process.env.AMITRANS_QEMU = '/nonexistent/qemu-system-x86_64';
    try {
      const r = await cli('verify', kvm);
      expect(r.code).toBe(3);
      expect(r.stdout).toMatch(/not installed \(Debian\/Ubuntu: apt-get install qemu-system-x86/);
    } finally {
      delete process.env.AMITRANS_QEMU;
    }
  });

  it('bad input: a usage error for a bad --expect, a typed error for a file that is not an image', async () => {
    const notImage = dir.file('empty.img');
    await writeFile(notImage, '');
    const r = await cli('verify', notImage);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^amitrans: .*empty\.img/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const u = await cli('verify', notImage, '--expect', '(');
    expect(u.code).toBe(2);
  });
});
