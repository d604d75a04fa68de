import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { constants, hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuestImage, centos5Guest, debRoot, requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import { binary } from './helpers.js';

// Issue 22: INT, TERM and HUP at any moment leave no partial output, no temporary
// (decompressed input, OVA spool) and no child process (7-Zip); after a SIGKILL the next
// run to the same output removes the stale partial and the dead run's temporaries.
let dir: TmpDir;
let big: string;
let ami: string;
let grubDir: string;

beforeAll(async () => {
  dir = await tmpDir();
  // 96 MiB of data that does not compress to nothing, so every run takes a while.
  big = dir.file('big.raw');
  const fh = await open(big, 'w');
  const chunk = Buffer.alloc(8 * 1024 * 1024);
  for (let i = 0; i < 12; i++) {
    for (let j = 0; j < chunk.length; j += 512) chunk.writeUInt32LE((i * 7919 + j) ^ 0x5bd1e995, j);
    await fh.write(chunk, 0, chunk.length, i * chunk.length);
  }
  await fh.close();
  await run('gzip', ['-k', '-1', big]);
  // A guest with data in it, so that translate is still writing when the signal comes.
  const g = centos5Guest({ plainKernel: true });
  ami = dir.file('ami.img');
  await buildGuestImage({ ...g.spec, files: { ...g.spec.files, '/srv/data.bin': { copy: big } } }, ami, { ...g.image, size: '160M' });
}, 120_000);
afterAll(async () => {
  await dir.remove();
});

interface Outcome {
  code: number | null;
  mark: string;
  tmp: string;
  outDir: string;
}

/** Start a run with its own output and temporary directories; signal it after `delayMs`. */
async function interrupted(name: string, args: (out: string) => string[], signal: NodeJS.Signals, delayMs: number, stdout?: string): Promise<Outcome> {
  const base = dir.file(`${name}-${signal}`);
  const outDir = `${base}/out`;
  const tmp = `${base}/tmp`;
  await mkdir(outDir, { recursive: true });
  await mkdir(tmp, { recursive: true });
  const mark = randomUUID();
  const out = stdout ? await open(`${outDir}/${stdout}`, 'w') : undefined;
  const child = spawn(process.execPath, [binary(), ...args(outDir)], {
    stdio: ['ignore', out ? out.fd : 'ignore', 'ignore'],
    // The mark is inherited by every child (7-Zip), so a survivor can be found in /proc.
    env: { ...process.env, AMITRANS_TMPDIR: tmp, AMITRANS_TEST_MARK: mark },
  });
  const closed = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  // Until node has installed amitrans' handlers a signal kills it as it would any program
  // that has not started yet; the run is "started" once the kernel shows them caught.
  if (signal !== 'SIGKILL' && signal !== 'SIGCONT') await handlersInstalled(child.pid!);
  await new Promise((r) => setTimeout(r, delayMs));
  child.kill(signal);
  const code = await closed;
  await out?.close();
  return { code, mark, tmp, outDir };
}

/**
 * Wait until `pid` runs amitrans (not the forked test worker before exec, which has the
 * worker's handlers) and catches INT, TERM and HUP (SigCgt in /proc/PID/status); or has exited.
 */
async function handlersInstalled(pid: number): Promise<void> {
  const want = (1n << BigInt(constants.signals.SIGINT - 1)) | (1n << BigInt(constants.signals.SIGTERM - 1)) | (1n << BigInt(constants.signals.SIGHUP - 1));
  for (let i = 0; i < 1000; i++) {
    const gone = (): string => '';
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(gone);
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(gone);
    const caught = /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    if (caught === undefined || /^State:\s*Z/m.test(status)) return;
    if (cmdline.includes(binary()) && (BigInt(`0x${caught}`) & want) === want) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`amitrans (pid ${pid}) did not install its signal handlers within 10 s`);
}

/** Processes whose environment carries `mark`: children a run left behind. */
async function survivors(mark: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const env = await readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '');
    if (env.includes(`AMITRANS_TEST_MARK=${mark}`)) found.push(pid);
  }
  return found;
}

async function expectClean(o: Outcome, signal: NodeJS.Signals, what: string): Promise<void> {
  // A run may finish before the signal arrives: then it must have succeeded.
  expect([0, 128 + constants.signals[signal]], what).toContain(o.code);
  expect((await readdir(o.outDir)).filter((f) => f.endsWith('.partial')), what).toEqual([]);
  expect(await readdir(o.tmp), `${what}: temporaries`).toEqual([]);
  // A killed child may take a moment to be reaped by init.
  let left = await survivors(o.mark);
  for (let i = 0; i < 20 && left.length; i++) {
    await new Promise((r) => setTimeout(r, 50));
    left = await survivors(o.mark);
  }
  expect(left, `${what}: processes left`).toEqual([]);
}

const RUNS: [string, (out: string) => string[], string?][] = [
  ['qcow2', (o) => ['convert', big, `${o}/x.qcow2`, '-o', 'compress=on']],
  ['vmdk-stream', () => ['convert', big, '-', '-O', 'vmdk', '-o', 'subformat=streamOptimized'], 'x.vmdk'],
  ['vhd-bz2', (o) => ['convert', big, `${o}/x.vhd.bz2`]],
  ['from-gz', (o) => ['convert', `${big}.gz`, `${o}/x.raw`]],
  ['ova-stdout', () => ['convert', big, '-', '-O', 'ova'], 'x.ova'],
  ['translate-ova', (o) => ['translate', ami, `${o}/x.ova`, '-t', 'virtualbox', '--grub-dir', grubDir]],
];

let interruptedRuns = 0;

describe('signals leave nothing behind', () => {
  for (const [name, args, stdout] of RUNS) {
    it(name, async (ctx) => {
      requireTools(ctx, 'gzip');
      grubDir = `${debRoot(ctx, 'grub-legacy')}/usr/lib/grub/x86_64-pc`;
      // One whole run first: it succeeds, leaves nothing, and tells how long a run takes.
      const started = performance.now();
      const whole = await interrupted(name, args, 'SIGCONT', 0, stdout);
      const runMs = performance.now() - started;
      expect(whole.code, `${name}: an uninterrupted run`).toBe(0);
      await expectClean(whole, 'SIGCONT', `${name}: an uninterrupted run`);
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
        // A random moment within the run (reading, writing, compressing or spooling), short
        // of its very end: a signal during node's own shutdown gets the default action.
        const delay = Math.floor(Math.random() * runMs * 0.6);
        const o = await interrupted(name, args, signal, delay, stdout);
        await expectClean(o, signal, `${name} ${signal} after ${delay} ms (exit ${o.code})`);
        if (o.code !== 0) interruptedRuns++;
      }
    }, 60_000);
  }
});

describe('the signal runs had teeth', () => {
  it('most runs were interrupted, not finished before the signal', () => {
    expect(interruptedRuns).toBeGreaterThanOrEqual(RUNS.length * 3 / 2);
  });
});

describe('after a SIGKILL', () => {
  it('the next run to the same output removes the stale partial and the dead run\'s temporaries', async () => {
    const o = await interrupted('kill', (d) => ['convert', `${big}.gz`, `${d}/x.qcow2`, '-o', 'compress=on'], 'SIGKILL', 1500);
    expect(o.code).toBe(null);
    // Nothing could clean up: the decompressed input is still in the temporary directory.
    expect((await readdir(o.tmp)).length).toBeGreaterThan(0);
    const again = spawn(process.execPath, [binary(), 'convert', `${big}.gz`, `${o.outDir}/x.qcow2`], {
      stdio: 'ignore',
      env: { ...process.env, AMITRANS_TMPDIR: o.tmp },
    });
    expect(await new Promise((resolve) => again.on('close', resolve))).toBe(0);
    expect(existsSync(`${o.outDir}/x.qcow2`)).toBe(true);
    expect((await readdir(o.outDir)).filter((f) => f.endsWith('.partial'))).toEqual([]);
    expect(await readdir(o.tmp)).toEqual([]);
  }, 60_000);

  it('a live writer\'s partial, or another host\'s, is never touched', async () => {
    const outDir = dir.file('live');
    await mkdir(outDir, { recursive: true });
    // A partial named for this (living) test process, as a concurrent writer would have.
    const live = `${outDir}/.x.raw.${hostname().replace(/[^A-Za-z0-9_]/g, '_')}.${process.pid}-0a0b0c0d.partial`;
    await writeFile(live, 'busy');
    // Another machine's writer on shared storage: its pid means nothing here, so it stays.
    const elsewhere = `${outDir}/.x.raw.some_other_host.4194303-0a0b0c0e.partial`;
    await writeFile(elsewhere, 'busy');
    const r = spawn(process.execPath, [binary(), 'convert', big, `${outDir}/x.raw`], { stdio: 'ignore' });
    expect(await new Promise((resolve) => r.on('close', resolve))).toBe(0);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(elsewhere)).toBe(true);
  }, 60_000);
});
