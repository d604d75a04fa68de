import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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
    runRoot = mkdtempSync(join(base, `amitrans-${process.pid}-`));
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

/** The temporary name of an unfinished output: the writer's pid lets a later run tell it is stale. */
export function partialName(path: string, random: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}-${random}.partial`);
}

/**
 * Remove the unfinished outputs of `path` that a killed run left (SIGKILL, a power cut):
 * those whose writer process no longer exists. A live writer's partial is never touched.
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
    const m = /^(\d+)-[0-9a-f]+\.partial$/.exec(name.slice(prefix.length));
    if (m && !processAlive(Number(m[1]))) await rm(join(dir, name), { force: true });
  }
}

/** Remove the run directories of runs that are gone (SIGKILL): same rule, by pid. */
export function removeStaleRunDirsSync(): void {
  let names: string[];
  try {
    names = readdirSync(tempBase());
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^amitrans-(\d+)-[A-Za-z0-9]{6}$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) rmSync(join(tempBase(), name), { recursive: true, force: true });
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
