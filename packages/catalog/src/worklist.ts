import { FileSink } from '@amitrans/block';
import { suggestedTargets, type Classified } from './classify.js';

/** One line of a worklist: what the fleet needs to fetch, translate and verify one image. */
export interface WorklistEntry {
  id: string;
  class: string;
  arch: string;
  /** instance-store: the bundle manifest (bucket/prefix.manifest.xml). */
  location?: string;
  /** EBS: the root volume's snapshot. */
  snapshot?: string;
  rootDeviceType: string;
  kernel: string;
  pvgrub?: { version: string; disk: string };
  owner: string;
  targets: string[];
}

export function worklistEntry(c: Classified): WorklistEntry {
  const i = c.image;
  const e: WorklistEntry = { id: i.id, class: c.class, arch: i.arch, rootDeviceType: i.rootDeviceType, kernel: i.kernelId, owner: i.ownerAlias ?? i.owner, targets: suggestedTargets(c.class) };
  if (i.location) e.location = i.location;
  if (i.snapshot) e.snapshot = i.snapshot;
  if (c.pvgrub) e.pvgrub = { version: c.pvgrub.version, disk: c.pvgrub.disk };
  return e;
}

/** JSON lines written under a temporary name and renamed when complete, as every output. */
export class WorklistWriter {
  private pending: string[] = [];
  private pendingBytes = 0;
  count = 0;

  private constructor(private readonly sink: FileSink) {}

  static async create(path: string): Promise<WorklistWriter> {
    return new WorklistWriter(await FileSink.create(path, { sync: false }));
  }

  /** A promise only when a batch is being written. */
  add(c: Classified): Promise<void> | undefined {
    const line = `${JSON.stringify(worklistEntry(c))}\n`;
    this.pending.push(line);
    this.pendingBytes += line.length;
    this.count++;
    return this.pendingBytes >= 256 * 1024 ? this.flush() : undefined;
  }

  async commit(): Promise<void> {
    await this.flush();
    await this.sink.commit();
  }

  abort(): Promise<void> {
    return this.sink.abort();
  }

  private async flush(): Promise<void> {
    if (!this.pending.length) return;
    const data = Buffer.from(this.pending.join(''), 'utf8');
    this.pending = [];
    this.pendingBytes = 0;
    await this.sink.write(data);
  }
}
