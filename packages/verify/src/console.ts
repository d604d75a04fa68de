import { GRUB_LEGACY_ERRORS } from './grub-errors.js';

/**
 * Reading a serial console as it streams: how far the boot got (milestones) and, when it
 * stopped, why (a failure class). Everything here is pure text matching, so it is tested
 * on recorded consoles as well as live boots.
 */

export type MilestoneName = 'bootloader' | 'kernel' | 'root-mounted' | 'init' | 'login' | 'expected' | 'ssh';

export interface Milestone {
  name: MilestoneName;
  /** Seconds since QEMU started. */
  seconds: number;
  /** The console line that marked it (ssh: the banner). */
  line: string;
}

export type FailureClass =
  | 'grub-error'
  | 'no-bootloader'
  | 'kernel-panic'
  | 'no-root-device'
  | 'emergency-shell'
  | 'no-console-output'
  | 'timeout'
  /** QEMU itself failed (a drive it cannot open): nothing was learnt about the guest. */
  | 'qemu-error';

export interface Failure {
  class: FailureClass;
  /** One sentence for a person: what the console shows and what it points to. */
  detail: string;
  /** The console line the class was read from. */
  line?: string;
  grubError?: { number: number; meaning: string };
}

// ANSI escapes (GRUB's menu, systemd's colours) and carriage returns are noise to a reader.
const ANSI = /\x1b(?:\[[0-9;?=]*[A-Za-z]|[()][0-9A-Za-z]|[=>78])/g;

const MILESTONES: readonly [MilestoneName, RegExp][] = [
  ['bootloader', /GNU GRUB|Welcome to GRUB|GRUB loading|SYSLINUX|ISOLINUX/],
  ['kernel', /Linux version \d/],
  ['root-mounted', /EXT[234]-fs \([^)]+\): (?:mounted filesystem|mounting ext)|VFS: Mounted root|XFS \([^)]+\): Ending clean mount|BTRFS info \([^)]+\): enabling/],
  ['init', /Run \/(?!init\b)\S+ as init process|systemd\[1\]: systemd \d|systemd \d+ running in system mode|Welcome to .+!|INIT: version|init: .*starting|Starting init/],
];

/** Lines that end a boot at once: the guest will not get further by itself. */
const FATAL: readonly { test: RegExp; failure: (m: RegExpExecArray, line: string) => Failure; beforeKernel?: true }[] = [
  {
    // GRUB legacy: "Error 17: Cannot mount selected partition" (stage 1.5: "Error 17").
    test: /\bError (\d{1,2})(?::\s*(.*\S))?/,
    beforeKernel: true,
    failure: (m, line) => {
      const number = Number(m[1]);
      const meaning = m[2] ?? GRUB_LEGACY_ERRORS[number] ?? 'unknown GRUB error';
      return { class: 'grub-error', detail: `GRUB error ${number}: ${meaning}${grubHint(number)}`, line, grubError: { number, meaning } };
    },
  },
  {
    test: /grub rescue>|Entering rescue mode/,
    beforeKernel: true,
    failure: (_m, line) => ({ class: 'grub-error', detail: 'GRUB 2 fell into rescue mode: it cannot find its modules or configuration', line }),
  },
  {
    test: /No bootable device|Boot failed: (.*)|not a bootable disk|Missing operating system|Operating system not found/,
    beforeKernel: true,
    failure: (_m, line) => ({ class: 'no-bootloader', detail: `the firmware found no boot code on the disk (${line.trim()}): the MBR has no bootloader`, line }),
  },
  {
    test: /Kernel panic - not syncing: (.*)/,
    failure: (m, line) => panic(m[1] ?? '', line),
  },
  {
    // initramfs-tools
    test: /ALERT!\s+(\S+) does not exist\.\s+Dropping to a shell|Gave up waiting for root (?:file system )?device/,
    failure: (m, line) => ({ class: 'no-root-device', detail: m[1] ? `the initrd gave up: root device ${m[1]} does not exist` : 'the initrd gave up waiting for the root device', line }),
  },
  {
    // dracut and the busybox test initrd
    test: /Warning: (\/dev\/\S+) does not exist|Could not boot\.|amitrans-initrd: cannot mount (\S+)|VFS: Cannot open root device "?([^"\s]*)/,
    failure: (m, line) => ({ class: 'no-root-device', detail: `the initrd or kernel cannot open the root device${m[1] ?? m[2] ?? m[3] ? ` ${m[1] ?? m[2] ?? m[3]}` : ''}`, line }),
  },
  {
    test: /You are in emergency mode|Give root password for maintenance|Entering emergency mode/,
    failure: (_m, line) => ({ class: 'emergency-shell', detail: 'init stopped in an emergency shell (a mount or a service it needs failed)', line }),
  },
];

function grubHint(n: number): string {
  if (n === 17) return ' (the root in menu.lst names no filesystem GRUB can mount: `root (hd0)` on a partitioned disk?)';
  if (n === 15) return ' (the kernel or initrd path in menu.lst is wrong)';
  if (n === 21 || n === 22) return ' (menu.lst names a disk or partition the machine does not have)';
  return '';
}

function panic(message: string, line: string): Failure {
  if (/Unable to mount root fs|VFS: Cannot open root|No filesystem could mount root/.test(message)) {
    return { class: 'no-root-device', detail: `the kernel cannot mount the root filesystem (${message.trim()})`, line };
  }
  return { class: 'kernel-panic', detail: `kernel panic: ${message.trim()}`, line };
}

// A disk the kernel found: "virtio_blk virtio1: [vda] 2457600 512-byte logical blocks", the
// same for sd/ata, the partition scan " vda: vda1", NVMe namespaces.
const DISK_SEEN = /\[((?:vd|sd|hd|xvd)[a-z]+)\] \d+ \d+-byte logical blocks|\b((?:vd|sd|hd|xvd)[a-z]+): \1\d|\b(nvme\d+n\d+): /;
const WAITING_FOR_ROOT = /Waiting for root (?:file system|device)|Begin: Waiting for root/;
const LINES_KEPT = 200;
const MAX_LINE = 4096;

export interface ConsoleWatchOptions {
  /** Success: a line (or the prompt being printed) that matches. Default: a login prompt. */
  expect?: RegExp;
  /** The disk bus the machine has, to say which driver is missing when no disk shows up. */
  bus?: string;
  /** Success is an SSH banner (read elsewhere); the console still marks the login prompt. */
  ssh?: boolean;
  /** Seconds since start (injected so recorded consoles can be replayed). */
  now: () => number;
}

export const LOGIN_PROMPT = /\blogin:\s*$/;

export class ConsoleWatch {
  readonly milestones: Milestone[] = [];
  failure: Failure | undefined;
  /** Set when the expected text (default: the login prompt) has been printed. */
  succeeded = false;
  /** Seconds of the last byte received (undefined: none yet). */
  lastOutput: number | undefined;
  private partial = '';
  private readonly lines: string[] = [];
  private readonly expect: RegExp;
  private readonly custom: boolean;
  private diskSeen: string | undefined;
  private waitingForRoot = false;
  private rootArgument: string | undefined;

  constructor(private readonly o: ConsoleWatchOptions) {
    this.expect = o.expect ?? LOGIN_PROMPT;
    this.custom = o.expect !== undefined;
  }

  feed(chunk: string): void {
    if (chunk.length === 0) return;
    this.lastOutput = this.o.now();
    const text = (this.partial + chunk).replace(ANSI, '');
    const parts = text.split(/\r?\n|\r(?!\n)/);
    this.partial = parts.pop() ?? '';
    for (const l of parts) this.line(l);
    // A prompt is printed without a newline: test the unfinished line too.
    if (this.partial.length > MAX_LINE) {
      this.line(this.partial);
      this.partial = '';
    } else if (!this.succeeded && this.partial) {
      this.checkSuccess(this.partial);
    }
  }

  private line(whole: string): void {
    // A console line longer than this is noise (or hostile): keep and match its start only.
    const l = whole.length > MAX_LINE ? whole.slice(0, MAX_LINE) : whole;
    if (l.trim() === '') return;
    this.lines.push(l);
    if (this.lines.length > LINES_KEPT) this.lines.shift();
    for (const [name, re] of MILESTONES) {
      if (!this.reached(name) && re.test(l)) this.mark(name, l);
    }
    const disk = DISK_SEEN.exec(l);
    if (disk) this.diskSeen ??= disk[1] ?? disk[2] ?? disk[3];
    const root = /Kernel command line:.*\broot=(\S+)/.exec(l);
    if (root) this.rootArgument = root[1];
    if (WAITING_FOR_ROOT.test(l)) this.waitingForRoot = true;
    if (this.reached('root-mounted')) this.waitingForRoot = false;
    if (!this.failure) this.checkFatal(l);
    if (!this.succeeded) this.checkSuccess(l);
  }

  private checkFatal(l: string): void {
    for (const f of FATAL) {
      if (f.beforeKernel && this.reached('kernel')) continue;
      const m = f.test.exec(l);
      if (!m) continue;
      const failure = f.failure(m, l.trim());
      this.failure = failure.class === 'no-root-device' ? this.withRootCause(failure) : failure;
      return;
    }
  }

  private checkSuccess(l: string): void {
    if (!this.expect.test(l)) return;
    if (!this.custom) this.mark('login', l);
    if (this.custom || !this.o.ssh) this.mark('expected', l);
    this.succeeded = true;
  }

  /** Say whether the disk never appeared (a driver) or appeared and root= names nothing on it. */
  private withRootCause(f: Failure): Failure {
    const root = this.rootArgument ? `root=${this.rootArgument}` : 'root=';
    if (this.diskSeen) return { ...f, detail: `${f.detail}; the kernel found disk ${this.diskSeen}, so ${root} names no filesystem on it (wrong root=?)` };
    const bus = this.o.bus ? ` on the ${this.o.bus} bus` : '';
    return { ...f, detail: `${f.detail}; no disk appeared${bus}: the kernel and its initrd lack the disk driver for it` };
  }

  reached(name: MilestoneName): boolean {
    return this.milestones.some((m) => m.name === name);
  }

  mark(name: MilestoneName, line: string): void {
    if (this.reached(name)) return;
    this.milestones.push({ name, seconds: round(this.o.now()), line: line.trim().slice(0, 300) });
  }

  /** The last console lines, escapes removed. */
  lastLines(n = 30): string[] {
    const all = this.partial.trim() ? [...this.lines, this.partial] : this.lines;
    return all.slice(-n);
  }

  /** Why a boot that did not succeed stopped, when no fatal line said so. */
  verdictAtEnd(reason: 'timeout' | 'silence' | 'exited', seconds: number): Failure {
    if (this.failure) return this.failure;
    if (this.waitingForRoot) {
      return this.withRootCause({ class: 'no-root-device', detail: `still waiting for the root device after ${Math.round(seconds)} s` });
    }
    if (!this.reached('kernel')) {
      if (this.lastOutput === undefined) return { class: 'no-console-output', detail: 'nothing was printed on the serial console' };
      if (this.reached('bootloader') || reason === 'silence') {
        return { class: 'no-console-output', detail: 'the bootloader started the kernel and the serial console stayed silent: the kernel console is not ttyS0 (console=hvc0 or xvc0 left on the kernel line?)' };
      }
    }
    if (reason === 'exited') return { class: 'kernel-panic', detail: 'the machine stopped (powered off or reset) before the expected output' };
    const wanted = [this.custom ? `match for ${String(this.expect)}` : this.o.ssh ? '' : 'login prompt', this.o.ssh ? 'SSH banner' : ''].filter(Boolean).join(' and ');
    return { class: 'timeout', detail: `no ${wanted} within ${Math.round(seconds)} s; the boot got as far as: ${this.milestones.at(-1)?.name ?? 'nothing'}` };
  }
}

function round(s: number): number {
  return Math.round(s * 10) / 10;
}
