import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

/**
 * What a run leaves behind if it is stopped: its temporaries (decompressed inputs, OVA
 * spools) and its children (7-Zip). Both are registered here so that a signal handler can
 * remove and kill them synchronously before the process exits; the normal paths still
 * remove their own when they finish.
 */

let runRoot: string | undefined;
const children = new Set<ChildProcess>();

/** The directory for temporaries: AMITRANS_TMPDIR, else the system's. */
export function tempBase(): string {
  return process.env.AMITRANS_TMPDIR ?? tmpdir();
}

/** One directory per run holds every temporary, so one removal on exit clears them all. */
function runDirectory(): string {
  if (runRoot === undefined) {
    const base = tempBase();
    mkdirSync(base, { recursive: true });
    removeStaleRunDirsSync();
    runRoot = mkdtempSync(join(base, `amitrans-${writer()}-`));
    // Library users get the same promise as the CLI: nothing of the run outlives it.
    process.once('exit', cleanupRunSync);
  }
  return runRoot;
}

/** A new temporary directory inside this run's directory; the caller removes it when done. */
export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(runDirectory(), `${prefix}-`));
}

/** Remove a temporary directory made by makeTempDir. */
export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Kill `child` if the run is stopped before it exits. */
export function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/**
 * Last-chance clean-up on a signal or at exit: kill the children, remove this run's
 * temporaries. Synchronous, because process.exit follows it.
 */
export function cleanupRunSync(): void {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
  if (runRoot !== undefined) {
    rmSync(runRoot, { recursive: true, force: true });
    runRoot = undefined;
  }
}

/**
 * Who writes: host and pid. A pid means something only on its own host, and outputs and
 * temporaries may live on storage several machines share (the fleet): a run only ever
 * judges files of its own host.
 */
function writer(): string {
  return `${hostname().replace(/[^A-Za-z0-9_]/g, '_').slice(0, 64)}.${process.pid}`;
}

/** Host and pid out of a name's writer part, when it is this host's. */
function ownPid(part: string): number | undefined {
  const dot = part.lastIndexOf('.');
  if (dot < 0 || part.slice(0, dot) !== writer().slice(0, writer().lastIndexOf('.'))) return undefined;
  const pid = Number(part.slice(dot + 1));
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** The temporary name of an unfinished output: its writer (host, pid) lets a later run tell it is stale. */
export function partialName(path: string, random: string): string {
  return join(dirname(path), `.${basename(path)}.${writer()}-${random}.partial`);
}

/**
 * Remove the unfinished outputs of `path` that a killed run left (SIGKILL, a power cut):
 * those whose writer process no longer exists. A live writer's partial is never touched.
 * A partial may be a directory (a bundle's staging directory): it goes with its contents.
 */
export async function removeStalePartials(path: string): Promise<void> {
  const dir = dirname(path);
  const prefix = `.${basename(path)}.`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return; // creating the output will say why the directory is unusable
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.partial')) continue;
    const m = /^(.+)-[0-9a-f]+\.partial$/.exec(name.slice(prefix.length));
    const pid = m ? ownPid(m[1]!) : undefined;
    if (pid !== undefined && !processAlive(pid)) await rm(join(dir, name), { recursive: true, force: true });
  }
}

/** Remove the run directories of this host's runs that are gone (SIGKILL): same rule. */
export function removeStaleRunDirsSync(): void {
  let names: string[];
  try {
    names = readdirSync(tempBase());
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^amitrans-(.+)-[A-Za-z0-9]{6}$/.exec(name);
    const pid = m ? ownPid(m[1]!) : undefined;
    if (pid !== undefined && pid !== process.pid && !processAlive(pid)) rmSync(join(tempBase(), name), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const interruptHandlers = new Set<() => Promise<void>>();

/**
 * Run `fn` when the run is stopped by a signal, before the process exits: for clean-up
 * that needs the network (aborting an S3 multipart upload), which the synchronous exit
 * handlers cannot do. Returns the function that unregisters it.
 */
export function onInterrupt(fn: () => Promise<void>): () => void {
  interruptHandlers.add(fn);
  return () => interruptHandlers.delete(fn);
}

/** Run every interrupt handler, giving them at most `timeoutMs` together. */
export async function runInterruptHandlers(timeoutMs: number): Promise<void> {
  const all = [...interruptHandlers].map((fn) => fn().catch(() => undefined));
  interruptHandlers.clear();
  if (all.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(all), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
}
