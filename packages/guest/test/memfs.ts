import type { GuestFs, GuestStat } from '../src/index.js';

type Node = { type: 'file'; data: Uint8Array } | { type: 'dir' } | { type: 'symlink'; target: string };

/** A tiny in-memory guest filesystem for unit tests of the parsers. */
export class MemFs implements GuestFs {
  readonly nodes = new Map<string, Node>([['/', { type: 'dir' }]]);
  reads = 0;

  file(path: string, content: string | Uint8Array): this {
    this.mkdirs(path.slice(0, path.lastIndexOf('/')) || '/');
    this.nodes.set(path, { type: 'file', data: typeof content === 'string' ? Buffer.from(content) : content });
    return this;
  }

  link(path: string, target: string): this {
    this.mkdirs(path.slice(0, path.lastIndexOf('/')) || '/');
    this.nodes.set(path, { type: 'symlink', target });
    return this;
  }

  mkdirs(path: string): this {
    let p = '';
    for (const part of path.split('/').filter(Boolean)) {
      p += `/${part}`;
      if (!this.nodes.has(p)) this.nodes.set(p, { type: 'dir' });
    }
    return this;
  }

  async lstat(path: string): Promise<GuestStat | undefined> {
    const n = this.nodes.get(path);
    if (!n) return undefined;
    const size = n.type === 'file' ? n.data.length : n.type === 'symlink' ? n.target.length : 4096;
    return { type: n.type, size, mode: n.type === 'dir' ? 0o40755 : 0o100644, uid: 0, gid: 0 };
  }

  async readlink(path: string): Promise<string> {
    const n = this.nodes.get(path);
    if (n?.type !== 'symlink') throw new Error(`not a link: ${path}`);
    return n.target;
  }

  async readdir(path: string): Promise<string[]> {
    const prefix = path === '/' ? '/' : `${path}/`;
    return [...this.nodes.keys()].filter((k) => k !== path && k.startsWith(prefix) && !k.slice(prefix.length).includes('/')).map((k) => k.slice(prefix.length));
  }

  async read(path: string, position: number, length: number): Promise<Uint8Array> {
    const n = this.nodes.get(path);
    if (n?.type !== 'file') throw new Error(`not a file: ${path}`);
    this.reads++;
    return n.data.subarray(position, position + length);
  }
}
