import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ImageError, isZero, makeTempDir, removeTempDir, trackChild, writeError, writeFully, type BlockDevice } from '@amitrans/block';
import { sevenZipPath } from '@amitrans/guest';
import type { Compression } from './sniff.js';
import { DecompressMeter, decompressBudget } from './decompress-budget.js';

export { sevenZipPath };

/**
 * A compressed input: a local file (read by name), or a device read in order (a remote
 * object, streamed through its read-ahead: never copied whole before decompressing).
 */
export type CompressedInput = string | { readonly device: BlockDevice; readonly name: string };

function inputName(input: CompressedInput): string {
  return typeof input === 'string' ? input : input.name;
}

/** The bytes of a device, in order, in 4 MiB reads. */
export function deviceStream(device: BlockDevice, chunk = 4 * 1024 * 1024): Readable {
  let at = 0;
  return new Readable({
    highWaterMark: chunk,
    read(this: Readable) {
      if (at >= device.size) {
        this.push(null);
        return;
      }
      const buf = Buffer.allocUnsafe(Math.min(chunk, device.size - at));
      device.read(buf, at).then(() => {
        at += buf.length;
        this.push(buf);
      }, (err: Error) => this.destroy(err));
    },
  });
}

/** A readable stream of the decompressed bytes of `input`. */
export async function decompressStream(input: CompressedInput, compression: Compression): Promise<{ stream: Readable; done: Promise<void>; stop: () => void }> {
  const path = inputName(input);
  const raw = (): Readable => (typeof input === 'string' ? createReadStream(input) : deviceStream(input.device));
  if (compression === 'gzip') {
    const source = raw();
    const stream = source.pipe(createGunzip());
    // A read error of the source (the network) is the stream's error, not a hang.
    source.on('error', (err) => stream.destroy(err));
    return { stream, done: Promise.resolve(), stop: () => source.destroy() };
  }
  if (compression === 'zstd') {
    throw new ImageError('E_UNSUPPORTED', 'zstd-compressed images are not supported; decompress with zstd -d first', { file: path });
  }
  const bin = await sevenZipPath();
  const fromFile = typeof input === 'string';
  const args = fromFile ? ['x', '-so', `-t${compression}`, path] : ['x', '-si', '-so', `-t${compression}`];
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  trackChild(child);
  if (fromFile) child.stdin.end();
  else {
    const source = raw();
    source.on('error', (err) => {
      child.kill();
      child.stdout.destroy(err);
    });
    child.stdin.on('error', () => undefined);
    source.pipe(child.stdin);
  }
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new ImageError('E_CORRUPT', `${compression} data is damaged (7-Zip exit ${code}: ${lastLine(stderr)})`, { file: path, structure: `${compression} stream` }));
    });
  });
  // The caller may fail on the stream before it awaits `done`; never leave it unhandled.
  done.catch(() => undefined);
  return { stream: child.stdout, done, stop: () => child.kill() };
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter((l) => l.trim()).slice(-2).join(' ').trim() || 'no message';
}

export interface TempImage {
  path: string;
  size: number;
  remove(): Promise<void>;
}

const BLOCK = 4096;

/**
 * Decompress `path` into a sparse temporary file: blocks of zeros are not written, so a
 * mostly-empty disk costs only its data on the temporary disk. Compressed images are
 * sequential by nature; this is how they become random-access.
 */
export async function decompressToTemp(
  input: CompressedInput,
  compression: Compression,
  progress?: (done: number) => void,
): Promise<TempImage> {
  const path = inputName(input);
  const dir = await makeTempDir('decompressed');
  const out = join(dir, 'decompressed.img');
  // A full temporary directory is the temporary's fault, not the input's: say so.
  const temp = { path: out, role: `the decompressed copy of ${path} (set AMITRANS_TMPDIR for more room)` };
  const remove = (): Promise<void> => removeTempDir(dir);
  try {
    const compressedBytes = typeof input === 'string' ? (await stat(input)).size : input.device.size;
    const meter = new DecompressMeter(decompressBudget(), compressedBytes, { file: path, structure: `${compression} stream` });
    const { stream, done, stop } = await decompressStream(input, compression);
    const fh = await open(out, 'w');
    let size = 0;
    try {
      let pending: Uint8Array = new Uint8Array(0);
      const flush = async (buf: Uint8Array, final: boolean): Promise<Uint8Array> => {
        const whole = final ? buf.length : buf.length - (buf.length % BLOCK);
        for (let p = 0; p < whole; p += BLOCK) {
          const block = buf.subarray(p, Math.min(whole, p + BLOCK));
          if (!isZero(block)) await writeFully(fh, block, size + p, temp);
        }
        size += whole;
        progress?.(size);
        meter.check(size);
        return buf.subarray(whole);
      };
      for await (const chunk of stream) {
        const c = chunk as Buffer;
        const joined = pending.length ? Buffer.concat([pending, c]) : c;
        pending = await flush(joined, false);
      }
      await flush(pending, true);
      await done;
      await fh.truncate(size).catch((err: unknown) => {
        throw writeError(err, temp);
      });
    } catch (err) {
      stop();
      if (err instanceof ImageError) throw err;
      throw new ImageError('E_CORRUPT', `${compression} data is damaged: ${(err as Error).message}`, { file: path, structure: `${compression} stream`, cause: err });
    } finally {
      await fh.close();
    }
    return { path: out, size, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
