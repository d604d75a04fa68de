import { emptyImage, IMAGE_ID, type ImageRecord, type Warn } from './image.js';

/** An image object larger than this is skipped with a warning: no object is held beyond it. */
export const MAX_OBJECT = 1024 * 1024;

/**
 * `aws ec2 describe-images` JSON as a stream: `{"Images": [...]}`, several such pages one
 * after another, a bare array of images, or JSON lines of image objects. Only one image
 * object is held at a time: the scanner follows nesting and strings byte by byte, cuts out
 * each element of an "Images" array (or each top-level image object) and parses that alone.
 */
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const NEWLINE = 0x0a;
const MAX_KEY = 64;

/**
 * `aws ec2 describe-images` JSON as a stream: `{"Images": [...]}`, several such pages one
 * after another, a bare array of images, or JSON lines of image objects. Only one image
 * object is held at a time: the scanner follows nesting and strings byte by byte, cuts out
 * each element of an "Images" array (or each top-level image object); toImage parses it.
 */
export class JsonScanner {
  private readonly stack: number[] = [];
  private inString = false;
  private escaped = false;
  private line = 1;
  /** The last string closed directly inside the top-level object (its last key). */
  private lastKey = '';
  private keyBytes: number[] = [];
  /** Depth whose objects are images: 1 in a bare array, 2 in a page's "Images" array. */
  private imagesAt = 0;
  /** Recording: the depth the recorded value opened at (0 = not recording). */
  private recordDepth = 0;
  private recordLine = 0;
  private parts: Buffer[] = [];
  private held = 0;
  private oversize = false;
  private lastGarbageLine = 0;

  constructor(private readonly file: string, private readonly warn: Warn) {}

  /** The text of every image object completed in `buf`, with the line it starts on. */
  feed(buf: Buffer): { text: string; line: number }[] {
    const done: { text: string; line: number }[] = [];
    let from = this.recordDepth > 0 ? 0 : -1;
    for (let i = 0; i < buf.length; i++) {
      const c = buf[i]!;
      if (c === NEWLINE) this.line++;
      if (this.inString) {
        this.stringByte(c);
        continue;
      }
      if (c === QUOTE) {
        this.inString = true;
        this.keyBytes = [];
      } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
        this.stack.push(c);
        const depth = this.stack.length;
        if (depth === 1 && c === OPEN_OBJECT) {
          this.startRecord(); // JSON lines: a top-level object is an image, unless it is a page
          from = i;
        } else if (depth === 1) {
          this.imagesAt = 1; // a bare array of images
        } else if (depth === 2 && c === OPEN_ARRAY && this.lastKey === 'Images') {
          this.stopRecord(); // a page: its images are taken one by one
          from = -1;
          this.imagesAt = 2;
        } else if (depth === this.imagesAt + 1 && c === OPEN_OBJECT && this.recordDepth === 0) {
          this.startRecord();
          from = i;
        }
      } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
        const open = this.stack.at(-1);
        if (open === undefined || (open === OPEN_OBJECT) !== (c === CLOSE_OBJECT)) {
          this.report(`unexpected '${String.fromCharCode(c)}', skipped`);
          continue;
        }
        const depth = this.stack.length;
        this.stack.pop();
        if (this.recordDepth === depth) {
          this.keep(buf.subarray(from, i + 1));
          from = -1;
          const line = this.recordLine;
          const text = this.takeRecord();
          if (text !== undefined) done.push({ text, line });
        }
        if (depth === this.imagesAt) this.imagesAt = 0;
        if (depth === 1) this.lastKey = '';
      } else if (this.stack.length === 0 && c !== 0x2c && c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== NEWLINE) {
        if (this.lastGarbageLine !== this.line) this.report('text outside any JSON value, skipped');
        this.lastGarbageLine = this.line;
      }
    }
    if (this.recordDepth > 0 && from >= 0) this.keep(buf.subarray(from));
    return done;
  }

  end(): void {
    if (this.stack.length > 0 || this.inString) this.report('the JSON ends inside an object or array (truncated?)');
  }

  /** An image from one recorded object; a warning (and undefined) when it is not one. */
  toImage(text: string, line: number): ImageRecord | undefined {
    const bad = (message: string): undefined => {
      this.warn({ file: this.file, line, message });
      return undefined;
    };
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return bad(`not valid JSON (${(err as Error).message}), skipped`);
    }
    return fromJson(value, this.file, line, bad);
  }

  private stringByte(c: number): void {
    if (this.escaped) this.escaped = false;
    else if (c === BACKSLASH) this.escaped = true;
    else if (c === QUOTE) {
      this.inString = false;
      if (this.stack.length === 1 && this.stack[0] === OPEN_OBJECT) this.lastKey = Buffer.from(this.keyBytes).toString('utf8');
      return;
    }
    if (this.stack.length === 1 && this.keyBytes.length < MAX_KEY) this.keyBytes.push(c);
  }

  private startRecord(): void {
    this.recordDepth = this.stack.length;
    this.recordLine = this.line;
    this.parts = [];
    this.held = 0;
    this.oversize = false;
  }

  private stopRecord(): void {
    this.recordDepth = 0;
    this.parts = [];
    this.held = 0;
  }

  private keep(piece: Buffer): void {
    if (this.oversize) return;
    if (this.held + piece.length > MAX_OBJECT) {
      this.oversize = true;
      this.parts = [];
      return;
    }
    this.parts.push(Buffer.from(piece)); // a copy: the stream may reuse its chunk
    this.held += piece.length;
  }

  private takeRecord(): string | undefined {
    const oversize = this.oversize;
    const text = oversize ? undefined : Buffer.concat(this.parts, this.held).toString('utf8');
    this.stopRecord();
    if (oversize) this.warn({ file: this.file, line: this.recordLine, message: `an image object larger than ${MAX_OBJECT} bytes, skipped` });
    return text;
  }

  private report(message: string): void {
    this.warn({ file: this.file, line: this.line, message });
  }
}

type Json = Record<string, unknown>;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** One describe-images `Images[]` element (guest.md §5.4 field list) as an ImageRecord. */
export function fromJson(value: unknown, file: string, line: number, bad: (m: string) => undefined): ImageRecord | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('a JSON value that is not an image object, skipped');
  const o = value as Json;
  const id = str(o.ImageId);
  if (!IMAGE_ID.test(id)) {
    return bad(o.ImageId === undefined ? 'an object without ImageId (not a describe-images page or image), skipped' : `ImageId ${JSON.stringify(id.slice(0, 40))} is not an image id, skipped`);
  }
  const image = emptyImage(id, file, line);
  image.location = str(o.ImageLocation) || str(o.Name);
  image.owner = str(o.OwnerId);
  if (str(o.ImageOwnerAlias)) image.ownerAlias = str(o.ImageOwnerAlias);
  image.state = str(o.State);
  if (typeof o.Public === 'boolean') image.public = o.Public;
  image.productCodes = Array.isArray(o.ProductCodes) ? o.ProductCodes.map((p) => str((p as Json)?.ProductCodeId)).filter(Boolean) : [];
  image.arch = str(o.Architecture);
  image.imageType = str(o.ImageType);
  image.kernelId = str(o.KernelId);
  image.ramdiskId = str(o.RamdiskId);
  image.platform = str(o.Platform);
  image.rootDeviceType = str(o.RootDeviceType) || (image.location.endsWith('.manifest.xml') ? 'instance-store' : '');
  image.rootDeviceName = str(o.RootDeviceName);
  image.virtualizationType = str(o.VirtualizationType);
  image.hypervisor = str(o.Hypervisor);
  if (str(o.Name)) image.name = str(o.Name);
  if (Array.isArray(o.Tags)) for (const t of o.Tags as Json[]) if (t && typeof t.Key === 'string') image.tags[t.Key] = str(t.Value);
  const root = rootSnapshot(o, image.rootDeviceName);
  if (root) image.snapshot = root;
  return image;
}

function rootSnapshot(o: Json, rootDevice: string): string | undefined {
  if (!Array.isArray(o.BlockDeviceMappings)) return undefined;
  const maps = o.BlockDeviceMappings as Json[];
  const snap = (m: Json | undefined): string | undefined => {
    const s = str((m?.Ebs as Json | undefined)?.SnapshotId);
    return s || undefined;
  };
  return snap(maps.find((m) => m && str(m.DeviceName) === rootDevice)) ?? snap(maps.find((m) => m && snap(m)));
}
