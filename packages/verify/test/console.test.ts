import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConsoleWatch, type ConsoleWatchOptions } from '../src/index.js';

/** Replay a console, one line per second, in chunks cut at random places. */
function replay(text: string, o: Partial<ConsoleWatchOptions> = {}): ConsoleWatch {
  let t = 0;
  const w = new ConsoleWatch({ now: () => t, ...o });
  const cuts = randomBytes(64);
  let pos = 0;
  for (let i = 0; pos < text.length; i++) {
    const n = 1 + (cuts[i % cuts.length]! % 40);
    const chunk = text.slice(pos, pos + n);
    if (chunk.includes('\n')) t += 1;
    w.feed(chunk);
    pos += n;
  }
  return w;
}

// Shapes of real consoles (GRUB legacy's menu escapes, kernel timestamps, systemd colours).
const GRUB = '\r\x1b[H\x1b[J\r\n    GNU GRUB  version 0.97  (639K lower / 523124K upper memory)\r\n\x1b[m\x1b[4;2H+----+\r\n';
const KERNEL = '[    0.000000] Linux version 6.1.0-50-cloud-amd64 (debian-kernel@lists.debian.org)\r\n' +
  '[    0.000000] Kernel command line: BOOT_IMAGE=/boot/vmlinuz ro root=UUID=5b7c3f0e-2d4a-4c1b-8e9f-6a0b1c2d3e4f console=ttyS0\r\n';
const DISK = '[    1.1] virtio_blk virtio1: [vda] 2457600 512-byte logical blocks (1.26 GB/1.17 GiB)\r\n[    1.2]  vda: vda1\r\n';
const ROOT = '[    2.8] Run /init as init process\r\n[    5.3] EXT4-fs (vda1): mounted filesystem with ordered data mode. Quota mode: none.\r\n';
const INIT = '[    6.1] systemd[1]: systemd 252.39-1~deb12u2 running in system mode (+PAM)\r\n\r\nWelcome to \x1b[1mDebian GNU/Linux 12 (bookworm)\x1b[0m!\r\n';
const LOGIN = '\r\nDebian GNU/Linux 12 ip-10-0-0-1 ttyS0\r\n\r\nip-10-0-0-1 login: ';

describe('milestones', () => {
  it('a full boot: bootloader, kernel, root, init, then the login prompt printed without a newline', () => {
    const w = replay(GRUB + KERNEL + DISK + ROOT + INIT + LOGIN);
    expect(w.milestones.map((m) => m.name)).toEqual(['bootloader', 'kernel', 'root-mounted', 'init', 'login', 'expected']);
    expect(w.succeeded).toBe(true);
    expect(w.failure).toBeUndefined();
    // Times come from the clock given, in order.
    const times = w.milestones.map((m) => m.seconds);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(w.lastLines().at(-1)).toBe('ip-10-0-0-1 login: ');
  });

  it('the initramfs\'s own /init is not the system\'s init', () => {
    const w = replay(KERNEL + ROOT);
    expect(w.reached('init')).toBe(false);
  });

  it('--expect replaces the login prompt; in ssh mode the prompt is only a milestone', () => {
    const marker = replay(KERNEL + 'AMITRANS-BOOT-OK kernel=6.1\r\n', { expect: /AMITRANS-BOOT-OK/ });
    expect(marker.succeeded).toBe(true);
    expect(marker.reached('login')).toBe(false);
    const ssh = replay(KERNEL + INIT + LOGIN, { ssh: true });
    expect(ssh.reached('login')).toBe(true);
    expect(ssh.reached('expected')).toBe(false);
    expect(ssh.verdictAtEnd('timeout', 300)).toMatchObject({ class: 'timeout', detail: expect.stringMatching(/no SSH banner within 300 s; .*login/) });
  });
});

describe('failure classes', () => {
  it('GRUB legacy error 17 with its meaning and a hint', () => {
    const w = replay(GRUB + "\r\n  Booting 'Debian'\r\n\r\nroot (hd0)\r\n Filesystem type unknown, using whole disk\r\n\r\nError 17: Cannot mount selected partition\r\n\r\nPress any key to continue...\r\n");
    expect(w.failure).toMatchObject({ class: 'grub-error', grubError: { number: 17, meaning: 'Cannot mount selected partition' } });
    expect(w.failure!.detail).toMatch(/root \(hd0\)/);
  });

  it('stage 1.5 prints the number only: the meaning comes from the table', () => {
    const w = replay('\r\nLoading stage1.5.\r\n\r\nGRUB loading, please wait...\r\nError 15\r\n');
    expect(w.failure).toMatchObject({ class: 'grub-error', grubError: { number: 15, meaning: 'File not found' } });
  });

  it('an "Error N" in kernel messages is not a GRUB error', () => {
    const w = replay(GRUB + KERNEL + '[    3.0] ata1: Error 2 on something\r\n');
    expect(w.failure).toBeUndefined();
  });

  it('kernel panic, and the panic that means no root device', () => {
    expect(replay(KERNEL + '[    3.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\r\n').failure)
      .toMatchObject({ class: 'kernel-panic', detail: 'kernel panic: Attempted to kill init! exitcode=0x00000100' });
    const noDisk = replay(KERNEL + '[    3.1] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n', { bus: 'virtio' }).failure;
    expect(noDisk).toMatchObject({ class: 'no-root-device' });
    expect(noDisk!.detail).toMatch(/no disk appeared on the virtio bus/);
  });

  it('initramfs-tools gives up: a disk was seen, so root= is wrong', () => {
    const f = replay(KERNEL + DISK + 'Begin: Waiting for root file system ... Begin: Running /scripts/local-block ... done.\r\n' +
      'Gave up waiting for root file system device.  Common problems:\r\nALERT!  UUID=00000000-1111 does not exist.  Dropping to a shell!\r\n').failure;
    expect(f).toMatchObject({ class: 'no-root-device' });
    expect(f!.detail).toMatch(/found disk vda, so root=UUID=5b7c3f0e-2d4a-4c1b-8e9f-6a0b1c2d3e4f names no filesystem/);
  });

  it('no disk at all: the driver for the bus is missing', () => {
    const f = replay(KERNEL + 'amitrans-initrd: root UUID=x is \r\namitrans-initrd: cannot mount UUID=x\r\n', { bus: 'sata' }).failure;
    expect(f).toMatchObject({ class: 'no-root-device' });
    expect(f!.detail).toMatch(/no disk appeared on the sata bus/);
  });

  it('still waiting for root when the time runs out is no-root-device, not a timeout', () => {
    const w = replay(KERNEL + 'Begin: Waiting for root file system ... \r\n');
    expect(w.failure).toBeUndefined();
    expect(w.verdictAtEnd('timeout', 120)).toMatchObject({ class: 'no-root-device' });
  });

  it('GRUB ran, then silence: the kernel console is not the serial port', () => {
    const w = replay(GRUB + "  Booting 'Debian'\r\nkernel /boot/vmlinuz root=UUID=x console=hvc0\r\n   [Linux-bzImage, setup=0x4200, size=0x7c0d80]\r\n");
    expect(w.verdictAtEnd('silence', 90)).toMatchObject({ class: 'no-console-output', detail: expect.stringMatching(/hvc0/) });
    expect(new ConsoleWatch({ now: () => 0 }).verdictAtEnd('silence', 90)).toMatchObject({ class: 'no-console-output', detail: 'nothing was printed on the serial console' });
  });

  it('systemd emergency mode', () => {
    expect(replay(KERNEL + INIT + 'You are in emergency mode. After logging in, type "journalctl -xb"\r\n').failure).toMatchObject({ class: 'emergency-shell' });
  });

  it('a boot that reached init and then stalls is a timeout naming how far it got', () => {
    expect(replay(KERNEL + ROOT + INIT).verdictAtEnd('timeout', 300)).toMatchObject({ class: 'timeout', detail: 'no login prompt within 300 s; the boot got as far as: init' });
  });
});

describe('hostile consoles', () => {
  it('random bytes and a line without end never grow the kept lines without bound', () => {
    const w = new ConsoleWatch({ now: () => 0 });
    for (let i = 0; i < 200; i++) w.feed(randomBytes(8192).toString('latin1'));
    w.feed('x'.repeat(1_000_000));
    const kept = w.lastLines(1000);
    expect(kept.length).toBeLessThanOrEqual(201);
    expect(kept.reduce((n, l) => n + l.length, 0)).toBeLessThan(1_000_000);
  });
});
