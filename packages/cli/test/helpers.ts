import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { sha256File } from '@amitrans/testkit';
import { runCli } from '../src/index.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the CLI in-process, capturing its output. */
export async function cli(...args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (s: string | Uint8Array) => ((stdout += String(s)), true) },
    stderr: { write: (s: string | Uint8Array) => ((stderr += String(s)), true) },
  });
  return { code, stdout, stderr };
}

const BIN = join(import.meta.dirname, '../dist/main.js');

/** The built amitrans binary (npm test builds it first). */
export function binary(): string {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build first (npm run build); npm test does`);
  return BIN;
}

/** Run the built binary, stdout to a file (or a pipe that is dropped); nodeArgs go to node. */
export function runBin(args: string[], stdoutFile?: string, nodeArgs: string[] = []): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    void (async () => {
      const out = stdoutFile ? await open(stdoutFile, 'w') : undefined;
      const child = spawn(process.execPath, [...nodeArgs, binary(), ...args], { stdio: ['ignore', out ? out.fd : 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code, signal) => {
        void out?.close();
        resolve({ code, signal, stderr });
      });
    })();
  });
}

type ChangeKey = { file: string; action: string };

/**
 * translate --dry-run lists exactly what the run does (one change per file and action) for
 * each target; a target that refuses the input refuses it the same way in both. `file`
 * names the outputs, e.g. `(kind, target) => dir.file(...)`.
 */
export async function expectDryRunEqualsRun(
  input: string,
  file: (kind: 'dry' | 'wet', target: string) => string,
  targets: readonly string[] = ['kvm', 'virtualbox', 'xenserver', 'eucalyptus'],
): Promise<void> {
  for (const target of targets) {
    const dry = await cli('translate', input, file('dry', target), '-t', target, '--dry-run', '--json');
    const wet = await cli('translate', input, file('wet', target), '-t', target, '-O', 'raw', '--json');
    if (wet.code !== 0 || dry.code !== 0) {
      expect({ code: dry.code, err: dry.stderr }, target).toEqual({ code: wet.code, err: wet.stderr });
      continue;
    }
    const key = (c: ChangeKey): string => `${c.action} ${c.file}`;
    const d = (JSON.parse(dry.stdout) as { changes: ChangeKey[] }).changes.map(key);
    const w = (JSON.parse(wet.stdout) as { changes: ChangeKey[] }).changes.map(key);
    expect(d, target).toEqual(w);
    expect(new Set(d).size, `${target}: one change per file and action`).toBe(d.length);
  }
}

/** Run the CLI and return its stdout; a non-zero exit throws with the command and stderr. */
export async function cliOk(...args: string[]): Promise<string> {
  const r = await cli(...args);
  if (r.code !== 0) throw new Error(`amitrans ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Inputs are never written: `remember` takes an input's sha256 before any command reads
 * it, and `expectUnchanged` (for afterAll) checks every remembered one again.
 */
export function inputGuard(): { remember(path: string): Promise<string>; expectUnchanged(): Promise<void> } {
  const inputs = new Map<string, string>();
  return {
    async remember(path) {
      if (!inputs.has(path)) inputs.set(path, await sha256File(path));
      return path;
    },
    async expectUnchanged() {
      for (const [path, hash] of inputs) expect(await sha256File(path), path).toBe(hash);
    },
  };
}
