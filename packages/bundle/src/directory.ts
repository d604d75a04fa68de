import { randomBytes } from 'node:crypto';
import { rmSync, unlinkSync } from 'node:fs';
import { mkdir, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageError, partialName, removeStalePartials, writeFully } from '@amitrans/block';
import type { BundleDestination, PartWriter } from './parts.js';

/** Staged bundles of this process, removed synchronously if it is stopped mid-way. */
const live = new Set<DirectoryDestination>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const d of live) d.abortSync();
  });
}

/**
 * A bundle written into a local directory. Parts and the manifest are written into a
 * hidden staging directory beside them and moved into place only when the whole bundle
 * is done, the manifest last: an interrupted run leaves nothing at the destination.
 */
export class DirectoryDestination implements BundleDestination {
  readonly location: string;
  readonly #staging: string;
  readonly #staged: string[] = [];
  readonly #placed: string[] = [];
  #done = false;

  private constructor(dir: string, staging: string) {
    this.location = dir;
    this.#staging = staging;
  }

  static async create(dir: string, prefix: string): Promise<DirectoryDestination> {
    try {
      await mkdir(dir, { recursive: true });
      if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
    } catch (err) {
      throw new ImageError('E_IO', `cannot use ${dir} as the bundle directory: ${(err as Error).message}`, { file: dir, cause: err });
    }
    // Named like every partial output (host, pid): a later bundle of the same prefix removes
    // the staging directory a SIGKILLed run left, and never a live run's.
    const staged = join(dir, `${prefix}.bundle`);
    await removeStalePartials(staged);
    const staging = partialName(staged, randomBytes(4).toString('hex'));
    await mkdir(staging);
    const d = new DirectoryDestination(dir, staging);
    live.add(d);
    hookExit();
    return d;
  }

  async openPart(name: string): Promise<PartWriter> {
    const path = join(this.#staging, name);
    const handle = await open(path, 'wx');
    this.#staged.push(name);
    let at = 0;
    const role = { path: join(this.location, name), role: 'a bundle part' };
    return {
      write: async (data) => {
        await writeFully(handle, data, at, role);
        at += data.length;
      },
      end: () => handle.close(),
    };
  }

  async writeManifest(name: string, text: string): Promise<string> {
    await writeFile(join(this.#staging, name), text, { flag: 'wx' });
    this.#staged.push(name);
    return join(this.location, name);
  }

  async commit(): Promise<void> {
    // Parts first, the manifest (staged last) last: a manifest never names a missing part.
    for (const name of this.#staged) {
      await rename(join(this.#staging, name), join(this.location, name));
      this.#placed.push(name);
    }
    await rm(this.#staging, { recursive: true, force: true });
    this.#done = true;
    live.delete(this);
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    this.abortSync();
  }

  abortSync(): void {
    if (this.#done) return;
    this.#done = true;
    live.delete(this);
    for (const name of this.#placed) {
      try {
        unlinkSync(join(this.location, name));
      } catch {
        // already gone
      }
    }
    rmSync(this.#staging, { recursive: true, force: true });
  }
}
