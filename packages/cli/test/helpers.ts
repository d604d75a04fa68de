import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
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
