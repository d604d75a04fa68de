import { emptyRecord, inferRootDeviceType, NO_TAGS, type ImageRecord, type ListingWarning } from './record.js';

/** One image object larger than this is not a describe-images image. */
const MAX_OBJECT = 16 * 2 ** 20;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LF = 0x0a;

type Container = { kind: 'object' | 'array'; images: boolean; key: string | undefined };

/**
 * `aws ec2 describe-images` JSON, streamed: one `{"Images":[…]}` document, several of them
 * one after the other (pages), a bare array of images, or JSON lines of images. Only one
 * image object is held at a time: a scanner tracks strings and nesting, cuts out each object
 * that is an image (an element of an "Images" array, of a top-level array, or a top-level
 * object that holds no "Images") and hands that object alone to JSON.parse.
 */
export class JsonListingParser {
  private line = 1;
  private stack: Container[] = [];
  private inString = false;
  private pendingEscape = false;
  /** The text of the string being read at depth 1, a candidate key. */
  private keyParts: string[] | undefined;
  private lastString: string | undefined;
  /** The object being cut out: its depth, first line, the bytes seen so far. */
  private capture: { depth: number; line: number; parts: Buffer[]; size: number; start: number; tooBig: boolean } | undefined;
  private junkLine = 0;

  constructor(
    private readonly source: string,
    private readonly onRecord: (record: ImageRecord) => void,
    private readonly onWarning: (warning: ListingWarning) => void,
  ) {}

  push(chunk: Buffer): void {
    let i = 0;
    if (this.capture) this.capture.start = 0;
    while (i < chunk.length) {
      if (this.inString) {
        i = this.skipString(chunk, i);
        continue;
      }
      const c = chunk[i]!;
      switch (c) {
        case QUOTE:
          this.inString = true;
          if (this.atKeyDepth()) this.keyParts = [];
          i++;
          continue;
        case LF:
          this.line++;
          break;
        case 0x7b: // {
          this.open('object', chunk, i);
          break;
        case 0x5b: // [
          this.open('array', chunk, i);
          break;
        case 0x7d: // }
        case 0x5d: // ]
          this.close(chunk, i);
          break;
        case 0x3a: // :
          if (this.atKeyDepth()) this.stack[0]!.key = this.lastString;
          break;
        case 0x2c: // ,
          if (this.atKeyDepth()) this.stack[0]!.key = undefined;
          break;
        case 0x20:
        case 0x09:
        case 0x0d:
          break;
        default:
          if (this.stack.length === 0) this.junk();
      }
      i++;
    }
    this.keepCapture(chunk);
  }

  end(): void {
    if (this.stack.length > 0 || this.inString) {
      const line = this.capture?.line ?? this.line;
      this.onWarning({ source: this.source, line, message: 'the JSON ends in the middle of a value' });
    }
    this.stack = [];
    this.capture = undefined;
  }

  private atKeyDepth(): boolean {
    return this.stack.length === 1 && this.stack[0]!.kind === 'object';
  }

  /**
   * Past the string's closing quote (or the chunk's end); keys at depth 1 are kept. A quote
   * ends the string when an even run of backslashes precedes it; only that run is looked
   * at, so a string costs one indexOf however long the chunk is.
   */
  private skipString(chunk: Buffer, from: number): number {
    let i = from;
    if (this.pendingEscape) {
      this.pendingEscape = false;
      i++;
    }
    let search = i;
    for (;;) {
      const q = search < chunk.length ? chunk.indexOf(QUOTE, search) : -1;
      if (q < 0) {
        this.keyParts?.push(chunk.toString('utf8', i));
        // An odd run of backslashes at the end escapes the next chunk's first byte.
        this.pendingEscape = backslashesBefore(chunk, chunk.length, i) % 2 === 1;
        return chunk.length;
      }
      if (backslashesBefore(chunk, q, i) % 2 === 1) {
        search = q + 1;
        continue;
      }
      if (this.keyParts) {
        this.keyParts.push(chunk.toString('utf8', i, q));
        this.lastString = this.keyParts.join('');
        this.keyParts = undefined;
      }
      this.inString = false;
      return q + 1;
    }
  }

  private open(kind: 'object' | 'array', chunk: Buffer, at: number): void {
    const parent = this.stack[this.stack.length - 1];
    const images = kind === 'array' && parent !== undefined && this.stack.length === 1 && parent.kind === 'object' && parent.key === 'Images';
    if (images && this.capture?.depth === 0) this.capture = undefined; // a page: cut out its images instead
    const isImage = kind === 'object' && !this.capture && (parent === undefined || parent.images || (this.stack.length === 1 && parent.kind === 'array'));
    if (isImage) this.capture = { depth: this.stack.length, line: this.line, parts: [], size: 0, start: at, tooBig: false };
    this.stack.push({ kind, images, key: undefined });
  }

  private close(chunk: Buffer, at: number): void {
    if (this.stack.length === 0) return this.junk();
    this.stack.pop();
    const capture = this.capture;
    if (!capture || capture.depth !== this.stack.length) return;
    this.capture = undefined;
    if (capture.tooBig) return this.warn(capture.line, `an object of more than ${MAX_OBJECT} bytes, skipped`);
    // Most objects lie inside one chunk: decoded from it directly, no copy.
    const text = capture.parts.length === 0
      ? chunk.toString('utf8', capture.start, at + 1)
      : Buffer.concat([...capture.parts, chunk.subarray(capture.start, at + 1)]).toString('utf8');
    this.emit(text, capture.line);
  }

  private keepCapture(chunk: Buffer): void {
    const capture = this.capture;
    if (!capture) return;
    const part = chunk.subarray(capture.start);
    capture.size += part.length;
    if (capture.size > MAX_OBJECT) {
      capture.tooBig = true;
      capture.parts = [];
    } else if (!capture.tooBig) {
      capture.parts.push(Buffer.from(part));
    }
  }

  private emit(text: string, line: number): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return this.warn(line, `bad JSON: ${(err as Error).message}`);
    }
    const record = recordFromJson(value, this.source, line);
    if (typeof record === 'string') return this.warn(line, record);
    this.onRecord(record);
  }

  /** Text outside any JSON value: one warning per line. */
  private junk(): void {
    if (this.junkLine === this.line) return;
    this.junkLine = this.line;
    this.warn(this.line, 'text outside any JSON value');
  }

  private warn(line: number, message: string): void {
    this.onWarning({ source: this.source, line, message });
  }
}

/** How many backslashes run back from `end` (exclusive), not before `start`. */
function backslashesBefore(chunk: Buffer, end: number, start: number): number {
  let n = 0;
  while (end - n - 1 >= start && chunk[end - n - 1] === BACKSLASH) n++;
  return n;
}

type Json = Record<string, unknown>;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** An element of `Images[]` (guest.md §5.4) as an ImageRecord. */
export function recordFromJson(value: unknown, source: string, line: number): ImageRecord | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'a JSON value that is not an image object';
  const o = value as Json;
  const id = str(o.ImageId);
  if (id === '') return 'a JSON object with no ImageId';
  const record = emptyRecord(source, line);
  record.id = id;
  record.name = str(o.Name);
  record.location = str(o.ImageLocation) || record.name;
  record.ownerId = str(o.OwnerId);
  record.owner = str(o.ImageOwnerAlias) || record.ownerId;
  record.state = str(o.State);
  record.public = typeof o.Public === 'boolean' ? o.Public : undefined;
  record.arch = str(o.Architecture);
  record.imageType = str(o.ImageType);
  record.kernelId = str(o.KernelId);
  record.ramdiskId = str(o.RamdiskId);
  record.platform = str(o.Platform);
  record.rootDeviceType = str(o.RootDeviceType);
  record.virtualizationType = str(o.VirtualizationType);
  record.hypervisor = str(o.Hypervisor);
  record.snapshotId = rootSnapshot(o);
  record.rootDeviceType ||= inferRootDeviceType(record);
  for (const tag of Array.isArray(o.Tags) ? o.Tags : []) {
    if (typeof tag !== 'object' || tag === null) continue;
    if (record.tags === NO_TAGS) record.tags = {};
    record.tags[str((tag as Json).Key)] = str((tag as Json).Value);
  }
  return record;
}

/** The snapshot of the mapping named by RootDeviceName, else of the first EBS mapping. */
function rootSnapshot(o: Json): string {
  const mappings = (Array.isArray(o.BlockDeviceMappings) ? o.BlockDeviceMappings : []) as Json[];
  const snap = (m: Json | undefined): string => str((m?.Ebs as Json | undefined)?.SnapshotId);
  const root = mappings.find((m) => typeof m === 'object' && m !== null && m.DeviceName === o.RootDeviceName);
  return snap(root) || snap(mappings.find((m) => snap(m) !== ''));
}
