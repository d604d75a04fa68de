import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ImageError, isZero, makeTempDir, removeTempDir, trackChild, writeError, writeFully } from '@amitrans/block';
import { sevenZipPath } from '@amitrans/guest';
import type { Compression } from './sniff.js';

export { sevenZipPath };

/** A readable stream of the decompressed bytes of `path`. */
export async function decompressStream(path: string, compression: Compression): Promise<{ stream: Readable; done: Promise<void> }> {
  if (compression === 'gzip') {
    const stream = createReadStream(path).pipe(createGunzip());
    return { stream, done: Promise.resolve() };
  }
  if (compression === 'zstd') {
    throw new ImageError('E_UNSUPPORTED', 'zstd-compressed images are not supported; decompress with zstd -d first', { file: path });
  }
  const bin = await sevenZipPath();
  const child = spawn(bin, ['x', '-so', `-t${compression}`, path], { stdio: ['ignore', 'pipe', 'pipe'] });
  trackChild(child);
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
  return { stream: child.stdout, done };
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
  path: string,
  compression: Compression,
  progress?: (done: number) => void,
): Promise<TempImage> {
  const dir = await makeTempDir('decompressed');
  const out = join(dir, 'decompressed.img');
  // A full temporary directory is the temporary's fault, not the input's: say so.
  const temp = { path: out, role: `the decompressed copy of ${path} (set AMITRANS_TMPDIR for more room)` };
  const remove = (): Promise<void> => removeTempDir(dir);
  try {
    const { stream, done } = await decompressStream(path, compression);
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
