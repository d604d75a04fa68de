import { emptyRecord, inferRootDeviceType, type ImageRecord, type ListingWarning } from './record.js';
import { applyMapping, applyTag, TextImageRecord } from './text-image.js';

/** Lines longer than this are no describe-images lines: dropped as they stream by. */
export const DEFAULT_MAX_LINE = 64 * 1024;

const TAB = 9;
const LF = 10;
const CR = 13;
const MAX_TABS = 64;
const IMAGE_TAB = Buffer.from('IMAGE\t');
const BDM_EBS = Buffer.from('BLOCKDEVICEMAPPING\tEBS\t');
const BDM_TAB = Buffer.from('BLOCKDEVICEMAPPING\t');
const TAG_IMAGE = Buffer.from('TAG\timage\t');

/**
 * The euca2ools / ec2-api-tools text form (guest.md §5.4): IMAGE lines of 14 tab-separated
 * fields (15 with the product-codes column after public/private), each followed by its
 * BLOCKDEVICEMAPPING and TAG lines. An IMAGE is emitted once the next IMAGE (or the end)
 * shows that nothing more belongs to it.
 *
 * Nothing is decoded that need not be: an IMAGE line is scanned byte by byte once (its tabs,
 * NUL and non-ASCII bytes) and, in the common shape, becomes a lazy TextImageRecord; the
 * mapping and TAG lines after it are found by indexOf and kept undecoded with it (ephemeral
 * mappings not even that). Anything unusual (blank-separated, non-ASCII, cut short, a line
 * with no IMAGE before it) takes the general path: the line decoded as UTF-8 and its
 * fields read by what they look like. Lines are numbered for the warnings either way.
 */
export class TextListingParser {
  private pending: ImageRecord | undefined;
  private number = 0;
  /** The start of a line that began in an earlier chunk (at most maxLine bytes). */
  private carry: Buffer | undefined;
  /** Bytes of an overlong line seen so far; 0 when none is being skipped. */
  private overlong = 0;
  private readonly tabs = new Int32Array(MAX_TABS + 2);

  constructor(
    private readonly source: string,
    private readonly onRecord: (record: ImageRecord) => void,
    private readonly onWarning: (warning: ListingWarning) => void,
    private readonly maxLine = DEFAULT_MAX_LINE,
  ) {}

  /** Lines read so far. */
  get lines(): number {
    return this.number;
  }

  push(chunk: Buffer): void {
    let from = 0;
    if (this.carry || this.overlong > 0) {
      const nl = chunk.indexOf(LF);
      if (nl < 0) return this.keep(chunk);
      this.keep(chunk.subarray(0, nl));
      from = nl + 1;
      this.endCarried();
    }
    let start = from;
    const tabAt = this.tabs;
    while (start < chunk.length) {
      // Only IMAGE lines are scanned byte by byte (tabs, NUL, non-ASCII); the ends of the
      // other lines are found by indexOf, natively.
      if (chunk[start] !== 0x49) {
        const nl = chunk.indexOf(LF, start);
        if (nl < 0) break;
        this.otherLine(chunk, start, nl);
        start = nl + 1;
        continue;
      }
      const i = scanLine(chunk, start, tabAt);
      if (i < 0) break;
      this.lineAt(chunk, start, i, tabAt[TABS]!, tabAt[ODD] !== 0);
      start = i + 1;
    }
    if (start < chunk.length) this.keep(chunk.subarray(start));
  }

  /**
   * A line that does not start with "I". The mapping and TAG lines of a lazy image are kept
   * undecoded with it (ephemeral mappings not even kept); anything else is decoded.
   */
  private otherLine(chunk: Buffer, start: number, end: number): void {
    const pending = this.pending;
    if (end > start && chunk[end - 1] === CR) end--;
    if (pending instanceof TextImageRecord && end - start <= this.maxLine) {
      if (startsWith(chunk, start, BDM_TAB)) {
        this.number++;
        if (startsWith(chunk, start, BDM_EBS)) pending.defer(chunk.subarray(start, end));
        return;
      }
      if (startsWith(chunk, start, TAG_IMAGE)) {
        const idStart = start + TAG_IMAGE.length;
        const idEnd = chunk.indexOf(TAB, idStart);
        if (idEnd > 0 && idEnd < end && pending.idEquals(chunk, idStart, idEnd)) {
          this.number++;
          pending.defer(chunk.subarray(start, end));
          return;
        }
      }
    }
    this.lineAt(chunk, start, end, 0, true);
  }

  /** The line that began in an earlier chunk ends here: scan it again as one buffer. */
  private endCarried(): void {
    const carry = this.carry;
    const overlong = this.overlong;
    this.carry = undefined;
    this.overlong = 0;
    if (overlong > 0) {
      this.number++;
      return this.warn(this.number, `line of ${overlong} bytes is too long to be a describe-images line`);
    }
    let tabs = 0;
    let odd = false;
    for (let i = 0; i < carry!.length; i++) {
      const c = carry![i]!;
      if (c === TAB) {
        if (tabs < MAX_TABS) this.tabs[tabs] = i;
        tabs++;
      } else if ((c < 0x20 && c !== CR) || c > 0x7e) {
        odd = true;
      }
    }
    this.lineAt(carry!, 0, carry!.length, tabs, odd);
  }

  private keep(part: Buffer): void {
    if (this.overlong > 0) {
      this.overlong += part.length;
      return;
    }
    const length = (this.carry?.length ?? 0) + part.length;
    if (length > this.maxLine) {
      this.overlong = length;
      this.carry = undefined;
      return;
    }
    // Copied: a stream may reuse its chunk buffers.
    this.carry = this.carry ? Buffer.concat([this.carry, part]) : Buffer.from(part);
  }

  private lineAt(chunk: Buffer, start: number, end: number, tabs: number, odd: boolean): void {
    const number = ++this.number;
    if (end > start && chunk[end - 1] === CR) end--;
    const length = end - start;
    if (length > this.maxLine) return this.warn(number, `line of ${length} bytes is too long to be a describe-images line`);
    if (length === 0) return;
    if (!odd && (tabs === 13 || tabs === 14) && startsWith(chunk, start, IMAGE_TAB)) {
      const record = this.fastImage(chunk, start, end, tabs, number);
      if (record) {
        this.flush();
        this.pending = record;
        return;
      }
    }
    this.text(chunk.toString('utf8', start, end), number);
  }

  /** An IMAGE line in the common shape, as a lazy record; undefined sends it down the general path. */
  private fastImage(chunk: Buffer, start: number, end: number, tabs: number, number: number): TextImageRecord | undefined {
    const tabAt = this.tabs;
    // Field 1 is the id ([ae][mkr]i- and 8 or 17 hex digits), field 5 public or private:
    // checked on the bytes, nothing decoded.
    if (!isImageId(chunk, start + tabAt[0]! + 1, start + tabAt[1]!)) return undefined;
    const v0 = start + tabAt[4]! + 1;
    const v1 = start + tabAt[5]!;
    if (!equalsAt(chunk, v0, v1, PUBLIC) && !equalsAt(chunk, v0, v1, PRIVATE)) return undefined;
    return new TextImageRecord(chunk, start, end, tabAt.slice(0, tabs), this.source, number);
  }

  /** The general path: one decoded line. */
  private text(text: string, number: number): void {
    if (text.includes('\0')) return this.warn(number, 'binary data (NUL bytes)');
    // The decoder turns bytes that are not UTF-8 into U+FFFD.
    if (text.includes('\uFFFD')) return this.warn(number, 'binary data (not UTF-8)');
    if (!/\S/.test(text)) return;
    const fields = splitFields(text);
    switch (fields[0]) {
      case 'IMAGE':
        return this.image(fields, number);
      case 'BLOCKDEVICEMAPPING':
        return this.blockDeviceMapping(fields, number);
      case 'TAG':
        return this.tag(fields, number);
      default:
        return this.warn(number, `not an IMAGE, BLOCKDEVICEMAPPING or TAG line: ${preview(text)}`);
    }
  }

  end(): void {
    if (this.carry || this.overlong > 0) this.endCarried();
    this.flush();
  }

  private flush(): void {
    const pending = this.pending;
    // Its mappings are known now: a cut-short line's root device type can be inferred.
    if (pending && !(pending instanceof TextImageRecord) && pending.rootDeviceType === '') pending.rootDeviceType = inferRootDeviceType(pending);
    if (pending) this.onRecord(pending);
    this.pending = undefined;
  }

  private warn(line: number, message: string): void {
    this.onWarning({ source: this.source, line, message });
  }

  private image(fields: string[], line: number): void {
    this.flush();
    const record = parseImageFields(fields, this.source, line);
    if (typeof record === 'string') return this.warn(line, record);
    this.pending = record;
  }

  private blockDeviceMapping(fields: string[], line: number): void {
    const record = this.pending;
    if (!record) return this.warn(line, 'BLOCKDEVICEMAPPING line with no IMAGE line before it');
    applyMapping(record, fields);
  }

  private tag(fields: string[], line: number): void {
    const record = this.pending;
    if (!record) return this.warn(line, 'TAG line with no IMAGE line before it');
    // TAG image <id> <key> <value>
    if (fields.length < 4 || fields[2] !== record.id) return this.warn(line, `TAG line not for ${record.id}, the IMAGE before it`);
    applyTag(record, fields);
  }
}

/** Tabs when the line has them (empty fields kept); otherwise runs of blanks, as in the notes. */
function splitFields(text: string): string[] {
  if (text.includes('\t')) return text.trimEnd().split('\t');
  return text.trim().split(/\s+/);
}

function startsWith(chunk: Buffer, at: number, prefix: Buffer): boolean {
  if (chunk.length - at < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (chunk[at + i] !== prefix[i]) return false;
  return true;
}

/** Where scanLine leaves the tab count and whether it saw a NUL or non-ASCII byte. */
const TABS = MAX_TABS;
const ODD = MAX_TABS + 1;

/**
 * Scan one line from `start`: the offsets of its tabs (from `start`) go to `tabAt`, their
 * count to tabAt[TABS], 1 to tabAt[ODD] when a NUL or non-ASCII byte is seen. Returns
 * the index of the newline, or -1 when the chunk ends first. A function of its own, on a
 * Uint8Array: V8 compiles its loop tighter than the same loop inside the parser's method.
 */
function scanLine(chunk: Uint8Array, start: number, tabAt: Int32Array): number {
  let tabs = 0;
  let odd = 0;
  const length = chunk.length;
  for (let i = start; i < length; i++) {
    const c = chunk[i]!;
    // Printable ASCII, nearly every byte: one test.
    if (c >= 0x20 && c < 0x7f) continue;
    if (c === LF) {
      tabAt[TABS] = tabs;
      tabAt[ODD] = odd;
      return i;
    }
    if (c === TAB) {
      if (tabs < MAX_TABS) tabAt[tabs] = i - start;
      tabs++;
    } else if (c !== CR) {
      odd = 1;
    }
  }
  return -1;
}

const PUBLIC = Buffer.from('public');
const PRIVATE = Buffer.from('private');

function equalsAt(bytes: Buffer, start: number, end: number, word: Buffer): boolean {
  return end - start === word.length && startsWith(bytes, start, word);
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66);
}

/** IMAGE_ID, on bytes. */
function isImageId(bytes: Buffer, start: number, end: number): boolean {
  const length = end - start;
  if (length !== 12 && length !== 21) return false;
  const [a, b, c, dash] = [bytes[start], bytes[start + 1], bytes[start + 2], bytes[start + 3]];
  if ((a !== 0x61 && a !== 0x65) || (b !== 0x6d && b !== 0x6b && b !== 0x72) || c !== 0x69 || dash !== 0x2d) return false;
  for (let i = start + 4; i < end; i++) if (!isHex(bytes[i]!)) return false;
  return true;
}


const ARCHES = new Set(['i386', 'x86_64', 'arm64']);
const IMAGE_ID = /^[ae][mkr]i-[0-9a-f]{8}([0-9a-f]{9})?$/;

/**
 * IMAGE, id, location, owner, state, visibility, [product codes,] arch, type, kernel,
 * ramdisk, platform, root device type, virtualization, hypervisor. After the type the
 * fields are read by what they look like, not by position: a blank-separated line (or one
 * cut short, like the notes' example) has lost its empty columns.
 */
export function parseImageFields(fields: string[], source: string, line: number): ImageRecord | string {
  if (fields.length < 8) return `short IMAGE line (${fields.length} fields, at least 8 needed)`;
  const [, id, location, owner, state, visibility] = fields as [string, string, string, string, string, string];
  if (!IMAGE_ID.test(id)) return `IMAGE line with no image id in its second field: ${preview(id)}`;
  if (visibility !== 'public' && visibility !== 'private') return `IMAGE line with "${preview(visibility)}" where public or private belongs`;
  // Arch at 6 (14 fields), or at 7 after the product codes (15 fields).
  const archAt = ARCHES.has(fields[6]!) ? 6 : ARCHES.has(fields[7]!) ? 7 : fields.length >= 15 ? 7 : 6;
  const record = emptyRecord(source, line);
  // The text form prints the alias or the account id: a 12-digit owner is the id.
  if (/^\d{12}$/.test(owner)) record.ownerId = owner;
  Object.assign(record, { id, location, owner, state, public: visibility === 'public', arch: fields[archAt] ?? '', imageType: fields[archAt + 1] ?? '' });
  if (location.includes('/') && !location.endsWith('.manifest.xml')) record.name = location.slice(location.indexOf('/') + 1);
  for (const f of fields.slice(archAt + 2)) readTailField(record, f);
  return record;
}

function readTailField(record: ImageRecord, f: string): void {
  if (f === '') return;
  if (/^[ae]ki-/.test(f)) record.kernelId ||= f;
  else if (/^[ae]ri-/.test(f)) record.ramdiskId ||= f;
  else if (f === 'instance-store' || f === 'ebs') record.rootDeviceType = f;
  else if (f === 'paravirtual' || f === 'hvm') record.virtualizationType = f;
  else if (f === 'xen' || f === 'ovm' || f === 'kvm') record.hypervisor = f;
  else if (f === 'windows') record.platform = f;
}

function preview(text: string): string {
  const t = text.length > 60 ? `${text.slice(0, 60)}…` : text;
  return JSON.stringify(t).slice(1, -1);
}
