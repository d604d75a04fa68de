import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from './cleanup.js';
import { FileSink, type Sink } from './sink.js';

export interface SpooledSinkOptions {
  /** Sees every chunk copied into the target, in order (a hash of what was delivered). */
  copied?: (chunk: Uint8Array) => void;
}

/**
 * A seekable sink in front of a destination that can only be appended to (an upload, a
 * caller's stream), for writers that patch tables after the data (qcow2, VDI, VMDK
 * monolithicSparse): the image is written to a sparse local temporary; `commit` asks
 * `target` for the destination (told the final size, which sizes an upload's parts),
 * copies the temporary into it in order and commits it. On any failure, and on `abort`,
 * the destination is aborted; the temporary is removed either way.
 */
export class SpooledSink implements Sink {
  readonly seekable = true;
  readonly #file: FileSink;
  readonly #dir: string;
  readonly #target: (size: number) => Sink | Promise<Sink>;
  readonly #copied: ((chunk: Uint8Array) => void) | undefined;
  #destination: Sink | undefined;

  private constructor(file: FileSink, dir: string, target: (size: number) => Sink | Promise<Sink>, o: SpooledSinkOptions) {
    this.#file = file;
    this.#dir = dir;
    this.#target = target;
    this.#copied = o.copied;
  }

  static async create(target: (size: number) => Sink | Promise<Sink>, o: SpooledSinkOptions = {}): Promise<SpooledSink> {
    const dir = await makeTempDir('spool');
    try {
      return new SpooledSink(await FileSink.create(join(dir, 'image'), { sync: false }), dir, target, o);
    } catch (err) {
      await removeTempDir(dir);
      throw err;
    }
  }

  get position(): number {
    return this.#file.position;
  }
  write(data: Uint8Array): Promise<void> {
    return this.#file.write(data);
  }
  skip(length: number): Promise<void> {
    return this.#file.skip(length);
  }
  pwrite(data: Uint8Array, position: number): Promise<void> {
    return this.#file.pwrite(data, position);
  }

  async commit(): Promise<void> {
    try {
      await this.#file.commit();
      const destination = await this.#target(this.#file.position);
      this.#destination = destination;
      for await (const chunk of createReadStream(this.#file.path, { highWaterMark: 4 * 1024 * 1024 })) {
        this.#copied?.(chunk as Buffer);
        await destination.write(chunk as Buffer);
      }
      await destination.commit();
      this.#destination = undefined;
    } catch (err) {
      await this.#destination?.abort();
      this.#destination = undefined;
      throw err;
    } finally {
      await removeTempDir(this.#dir);
    }
  }

  async abort(): Promise<void> {
    await this.#file.abort();
    await this.#destination?.abort();
    this.#destination = undefined;
    await removeTempDir(this.#dir);
  }
}
