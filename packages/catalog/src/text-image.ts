import { NO_TAGS, type ImageRecord } from './record.js';

/**
 * Buffer#latin1Slice: what toString('latin1', a, b) calls after checking its arguments,
 * which the offsets here need not (they come from the scan). Undocumented but present
 * since Node 0.x; a field is decoded per image of a 2-million-line listing.
 */
interface LatinBuffer extends Buffer {
  latin1Slice(start: number, end: number): string;
}

interface Extras {
  snapshotId: string;
  tags: Record<string, string>;
}

/** A BLOCKDEVICEMAPPING line's fields: EBS <device> <snapshot> ...; older tools print the snapshot without the EBS column. */
export function applyMapping(record: Extras, fields: string[]): void {
  const snapshot = fields.find((f) => f.startsWith('snap-'));
  if (snapshot === undefined || record.snapshotId !== '') return;
  const device = fields[1] === 'EBS' ? fields[2] ?? '' : fields[1] ?? '';
  if (isRootDevice(device) || !fields.some(isRootDevice)) record.snapshotId = snapshot;
}

/** A TAG line's fields: TAG image <id> <key> <value> (the id already checked). */
export function applyTag(record: Extras, fields: string[]): void {
  if (record.tags === NO_TAGS) record.tags = {};
  record.tags[fields[3]!] = fields.slice(4).join(' ');
}

function isRootDevice(device: string): boolean {
  return /^(\/dev\/)?(sda1?|xvda1?)$/.test(device);
}

/**
 * An IMAGE line of the tab-separated form, read lazily: its bytes and the offsets of its
 * tabs are kept, and a field is decoded only when asked for. Counting a 2-million-line
 * listing needs the kernel field of each image and nothing else; decoding every field of
 * every line cost more than the rest of the work together. Only lines that are plain
 * ASCII with exactly 14 or 15 fields take this path (see TextListingParser).
 */
export class TextImageRecord implements ImageRecord {
  /** Its EBS mapping and TAG lines, read when snapshotId or tags are first asked for. */
  private deferred: Buffer[] | undefined;
  private snapshot: string | undefined;
  private tagMap: Record<string, string> | undefined;
  private root: string | undefined;
  // Declared here so that classify() does not change the object's shape per image.
  class: unknown = undefined;
  pvgrub: unknown = undefined;

  /**
   * @param chunk the bytes holding the line, from `start` to `end` (no newline)
   * @param tabs the offsets of its tabs, from `start`
   */
  constructor(private readonly chunk: Buffer, private readonly start: number, private readonly end: number, private readonly tabs: Int32Array, readonly source: string, readonly line: number) {}

  /** Field k (0 is "IMAGE"). */
  private field(k: number): string {
    const start = this.start + (k === 0 ? 0 : this.tabs[k - 1]! + 1);
    const end = k < this.tabs.length ? this.start + this.tabs[k]! : this.end;
    return (this.chunk as LatinBuffer).latin1Slice(start, end);
  }

  /** Whether bytes [start, end) of `other` are this image's id. */
  idEquals(other: Buffer, start: number, end: number): boolean {
    const from = this.start + this.tabs[0]! + 1;
    const length = this.tabs[1]! - this.tabs[0]! - 1;
    return end - start === length && this.chunk.compare(other, start, end, from, from + length) === 0;
  }

  /** A BLOCKDEVICEMAPPING or TAG line of this image, kept undecoded. */
  defer(line: Buffer): void {
    (this.deferred ??= []).push(line);
  }

  /** Apply the lines deferred so far (more may come after a first read). */
  private resolve(): void {
    if (!this.deferred && this.snapshot !== undefined) return;
    const target = { snapshotId: this.snapshot ?? '', tags: this.tagMap ?? (NO_TAGS as Record<string, string>) };
    for (const line of this.deferred ?? []) {
      const fields = line.toString('utf8').split('\t');
      if (fields[0] === 'TAG') applyTag(target, fields);
      else applyMapping(target, fields);
    }
    this.deferred = undefined;
    this.snapshot = target.snapshotId;
    this.tagMap = target.tags;
  }

  get snapshotId(): string {
    this.resolve();
    return this.snapshot!;
  }
  set snapshotId(value: string) {
    this.resolve();
    this.snapshot = value;
  }
  get tags(): Record<string, string> {
    this.resolve();
    return this.tagMap!;
  }
  set tags(value: Record<string, string>) {
    this.resolve();
    this.tagMap = value;
  }

  /** Arch is field 6, or 7 after the product-codes column of the 15-field form. */
  private get archAt(): number {
    return this.tabs.length === 14 ? 7 : 6;
  }

  get id(): string { return this.field(1); }
  get location(): string { return this.field(2); }
  get name(): string {
    const location = this.location;
    return location.includes('/') && !location.endsWith('.manifest.xml') ? location.slice(location.indexOf('/') + 1) : '';
  }
  get owner(): string { return this.field(3); }
  /** The text form prints the alias or the account id: a 12-digit owner is the id. */
  get ownerId(): string {
    const owner = this.owner;
    return /^\d{12}$/.test(owner) ? owner : '';
  }
  get state(): string { return this.field(4); }
  get public(): boolean { return this.field(5) === 'public'; }
  get arch(): string { return this.field(this.archAt); }
  get imageType(): string { return this.field(this.archAt + 1); }
  get kernelId(): string { return this.field(this.archAt + 2); }
  get ramdiskId(): string { return this.field(this.archAt + 3); }
  get platform(): string { return this.field(this.archAt + 4); }
  get rootDeviceType(): string {
    if (this.root !== undefined) return this.root;
    const printed = this.field(this.archAt + 5);
    return printed !== '' ? printed : this.location.endsWith('.manifest.xml') ? 'instance-store' : this.snapshotId !== '' ? 'ebs' : '';
  }
  set rootDeviceType(value: string) { this.root = value; }
  get virtualizationType(): string { return this.field(this.archAt + 6); }
  get hypervisor(): string { return this.field(this.archAt + 7); }
}

/** An image as a plain object, whatever class holds it: for JSON output and comparisons. */
export function plainRecord(record: ImageRecord): ImageRecord {
  return {
    id: record.id, location: record.location, name: record.name, owner: record.owner, ownerId: record.ownerId, state: record.state,
    public: record.public, arch: record.arch, imageType: record.imageType, kernelId: record.kernelId, ramdiskId: record.ramdiskId,
    platform: record.platform, rootDeviceType: record.rootDeviceType, virtualizationType: record.virtualizationType,
    hypervisor: record.hypervisor, snapshotId: record.snapshotId, tags: record.tags, source: record.source, line: record.line,
  };
}
