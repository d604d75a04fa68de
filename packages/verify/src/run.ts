import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { trackChild } from '@amitrans/block';
import { ConsoleWatch, type Failure, type Milestone } from './console.js';
import { qemuArgs, type Accel, type Machine } from './qemu.js';
import { freePort, readSshBanner } from './ssh.js';

export interface BootOptions {
  /** qemu-system-x86_64's path (findQemu). */
  qemu: string;
  accel: Accel;
  /** Success is this console text instead of a login prompt. */
  expect?: RegExp;
  /** Success is an SSH banner read through a host forward to the guest's port 22. */
  ssh?: boolean;
  /** The whole boot is bounded by this (default 300 s). */
  timeoutSeconds?: number;
  /**
   * Before the kernel prints, this much silence ends the boot (a kernel console that is
   * not the serial port prints nothing, ever). Default 90 s: TCG bootloaders read a large
   * initrd through the BIOS quietly.
   */
  silenceSeconds?: number;
  signal?: AbortSignal;
  /** Keep the console log here (written whole, renamed into place at the end). */
  log?: string;
  onMilestone?: (m: Milestone) => void;
}

export interface BootOutcome {
  command: string[];
  accel: Accel;
  booted: boolean;
  milestones: Milestone[];
  failure?: Failure;
  lastLines: string[];
  seconds: number;
  sshPort?: number;
  sshBanner?: string;
}

const POLL_MS = 500;
const SSH_RETRY_MS = 2000;

/**
 * Boot a machine under QEMU and watch its serial console until the success condition, a
 * fatal console line, silence, the time limit, QEMU's exit, or the abort signal. QEMU is
 * always killed and reaped before this returns.
 */
export async function bootMachine(machine: Machine, o: BootOptions): Promise<BootOutcome> {
  o.signal?.throwIfAborted();
  const sshPort = o.ssh ? await freePort() : undefined;
  const args = qemuArgs(machine, o.accel, sshPort);
  const started = performance.now();
  const now = (): number => (performance.now() - started) / 1000;
  const watch = new ConsoleWatch({ ...(o.expect ? { expect: o.expect } : {}), ssh: o.ssh === true, bus: machine.bus, now });
  const utf8 = new StringDecoder('utf8');
  const log = o.log ? createWriteStream(`${o.log}.partial`) : undefined;
  const child = spawn(o.qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  trackChild(child);
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    log?.write(d);
    watch.feed(utf8.write(d));
  });
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString('latin1')).slice(-4000)));
  let banner: string | undefined;
  let reported = 0;
  const report = (): void => {
    for (; reported < watch.milestones.length; reported++) o.onMilestone?.(watch.milestones[reported]!);
  };
  try {
    const end = await waitForEnd(watch, o, now, exited, sshPort, (b) => (banner = b), report);
    report();
    if (spawnError) throw spawnError;
    const booted = end === 'success';
    const failure = end === 'success' ? undefined : qemuFailure(stderr, end) ?? watch.verdictAtEnd(end, now());
    return {
      command: [o.qemu, ...args],
      accel: o.accel,
      booted,
      milestones: watch.milestones,
      ...(failure ? { failure } : {}),
      lastLines: watch.lastLines(),
      seconds: Math.round(now() * 10) / 10,
      ...(sshPort ? { sshPort } : {}),
      ...(banner ? { sshBanner: banner } : {}),
    };
  } finally {
    await stop(child, exited);
    await closeLog(log, o.log);
  }
}

type End = 'success' | 'timeout' | 'silence' | 'exited';

async function waitForEnd(
  watch: ConsoleWatch, o: BootOptions, now: () => number, exited: Promise<void>,
  sshPort: number | undefined, onBanner: (b: string) => void, report: () => void,
): Promise<End> {
  const timeout = o.timeoutSeconds ?? 300;
  const silence = o.silenceSeconds ?? 90;
  let qemuGone = false;
  void exited.then(() => (qemuGone = true));
  let nextSsh = 0;
  let probing: Promise<void> | undefined;
  let sshOk = false;
  for (;;) {
    o.signal?.throwIfAborted();
    report();
    if (watch.failure) return 'exited';
    const consoleOk = watch.succeeded || (o.ssh === true && o.expect === undefined);
    if (consoleOk && (!o.ssh || sshOk)) return 'success';
    if (qemuGone) return 'exited';
    const t = now();
    if (t >= timeout) return 'timeout';
    if (!watch.reached('kernel') && t - (watch.lastOutput ?? 0) >= silence) return 'silence';
    if (sshPort && !probing && t >= nextSsh && !sshOk) {
      nextSsh = t + SSH_RETRY_MS / 1000;
      probing = readSshBanner(sshPort, 5000).then((b) => {
        if (b) {
          sshOk = true;
          onBanner(b);
          watch.mark('ssh', b);
        }
        probing = undefined;
      });
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** QEMU's own complaints (a bad drive, a missing device) come on its stderr. */
function qemuFailure(stderr: string, end: End): Failure | undefined {
  if (end !== 'exited' || /^\s*$/.test(stderr)) return undefined;
  const line = stderr.split('\n').map((l) => l.trim()).find((l) => /qemu-system|qemu-kvm|could not|failed|error/i.test(l));
  return line ? { class: 'qemu-error', detail: `QEMU could not run the machine: ${line}`, line } : undefined;
}

async function stop(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await exited;
}

async function closeLog(log: WriteStream | undefined, path: string | undefined): Promise<void> {
  if (!log || !path) return;
  await new Promise<void>((resolve) => log.end(() => resolve()));
  try {
    await rename(`${path}.partial`, path);
  } catch (err) {
    await rm(`${path}.partial`, { force: true });
    throw err;
  }
}
