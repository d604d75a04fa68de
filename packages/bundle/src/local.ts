import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ImageError, isZero, type Sink } from '@amitrans/block';
import { MAX_MANIFEST_BYTES, type ParsedManifest } from './manifest.js';
import { parseManifest } from './manifest-parse.js';
import type { PartSource } from './unbundle.js';
import type { ExtractTarget } from './untar.js';

/** Read and parse a manifest file; errors name it. */
export async function readManifestFile(path: string): Promise<ParsedManifest> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw new ImageError('E_IO', `cannot read the manifest: ${(err as Error).message}`, { file: path, cause: err });
  }
  if (size > MAX_MANIFEST_BYTES) throw new ImageError('E_TOO_LARGE', `a manifest of ${size} bytes is beyond ${MAX_MANIFEST_BYTES}`, { file: path });
  try {
    return parseManifest(await readFile(path));
  } catch (err) {
    throw err instanceof ImageError ? err.inFile(path) : err;
  }
}

/** Parts next to a local manifest. */
export class DirectorySource implements PartSource {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  static besideManifest(manifestPath: string): DirectorySource {
    return new DirectorySource(dirname(manifestPath));
  }

  location(name: string): string {
    return join(this.dir, name);
  }

  async *read(name: string): AsyncIterable<Uint8Array> {
    const path = this.location(name);
    const stream = createReadStream(path, { highWaterMark: 1024 * 1024 });
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) yield chunk;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new ImageError('E_TRUNCATED', 'the part is missing', { file: path, structure: `part ${name}`, cause: err });
      throw new ImageError('E_IO', `cannot read the part: ${(err as Error).message}`, { file: path, structure: `part ${name}`, cause: err });
    } finally {
      stream.destroy();
    }
  }
}

/** Granule for leaving zeros as holes in a file output. */
const HOLE = 64 * 1024;

/** The unbundled image into a seekable sink; zero runs become holes. */
export class SinkTarget implements ExtractTarget {
  readonly sink: Sink;
  size = 0;

  constructor(sink: Sink) {
    this.sink = sink;
  }

  async begin(_name: string, size: number): Promise<void> {
    this.size = size;
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    if (position > this.sink.position) await this.sink.skip(position - this.sink.position);
    let i = 0;
    while (i < data.length) {
      const n = Math.min(HOLE - ((position + i) % HOLE), data.length - i);
      const piece = data.subarray(i, i + n);
      if (isZero(piece)) await this.sink.skip(n);
      else await this.sink.write(piece);
      i += n;
    }
  }

  /** Pad to the member's size (a trailing hole) before the sink commits. */
  async finish(): Promise<void> {
    if (this.size > this.sink.position) await this.sink.skip(this.size - this.sink.position);
  }
}
