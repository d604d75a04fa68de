import { open, rm, type FileHandle } from 'node:fs/promises';
import type { Sink } from '@amitrans/block';

const ZEROS = new Uint8Array(64 * 1024);

/**
 * A Sink as a library user would write one, straight onto a file with node's fs (none of
 * amitrans's sinks): append-only when `seekable` is false (holes written as zeros, no
 * pwrite), so it stands for a pipe or an upload. It records how it was finished. It has no `path` (FileSink has one, which a VMDK descriptor takes its name from).
 */
export class UserFileSink implements Sink {
  position = 0;
  #end = 0;
  commits = 0;
  aborts = 0;

  private constructor(
    readonly file: string,
    readonly seekable: boolean,
    private readonly handle: FileHandle,
  ) {}

  static async create(path: string, o: { seekable: boolean }): Promise<UserFileSink> {
    return new UserFileSink(path, o.seekable, await open(path, 'w'));
  }

  async write(data: Uint8Array): Promise<void> {
    await this.writeAt(data, this.position);
    this.position += data.length;
  }

  async skip(length: number): Promise<void> {
    if (this.seekable) {
      this.position += length;
      return;
    }
    for (let left = length; left > 0; left -= ZEROS.length) await this.write(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
  }

  async pwrite(data: Uint8Array, position: number): Promise<void> {
    if (!this.seekable) throw new Error('this sink is append-only');
    await this.writeAt(data, position);
  }

  async commit(): Promise<void> {
    this.commits++;
    if (this.position > this.#end) await this.handle.truncate(this.position);
    await this.handle.close();
  }

  async abort(): Promise<void> {
    this.aborts++;
    await this.handle.close().catch(() => undefined);
    await rm(this.file, { force: true });
  }

  private async writeAt(data: Uint8Array, position: number): Promise<void> {
    for (let done = 0; done < data.length;) {
      const { bytesWritten } = await this.handle.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
    this.#end = Math.max(this.#end, position + data.length);
  }
}
