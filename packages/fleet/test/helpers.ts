import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** A free TCP port on 127.0.0.1 (the kernel picks it; the tests then bind it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  url: string;
  close(): Promise<void>;
}

/** Debian's redis-server on a free 127.0.0.1 port, without persistence (fleet.md §4.1). */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
  });
  const stop = (): void => void child.kill('SIGTERM');
  process.once('exit', stop);
  return {
    url: `redis://127.0.0.1:${port}`,
    close: async () => {
      process.off('exit', stop);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const BIN = join(import.meta.dirname, '../../cli/dist/main.js');

export function binary(): string {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build first (npm run build)`);
  return BIN;
}

export interface BinResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The built amitrans, as a process, with extra environment. */
export function startBin(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<BinResult>; lines: string[]; onLine: (fn: (line: string) => void) => void } {
  const child = spawn(process.execPath, [binary(), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  const lines: string[] = [];
  const listeners: ((line: string) => void)[] = [];
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      for (const fn of listeners) fn(l);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<BinResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, lines, onLine: (fn) => listeners.push(fn) };
}

export function runBin(args: string[], env: Record<string, string> = {}): Promise<BinResult> {
  return startBin(args, env).done;
}
