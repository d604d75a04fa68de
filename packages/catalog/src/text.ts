import { emptyImage, IMAGE_ID, type ImageRecord, type Warn } from './image.js';

/**
 * euca2ools / ec2-api-tools text (guest.md §5.4): IMAGE lines of 14 fields, or 15 with the
 * product-codes column, then the BLOCKDEVICEMAPPING and TAG lines of that image. Fields are
 * tab-separated with empty strings for missing ones; copies in documents often have the
 * tabs turned into runs of spaces (the notes' own example), so after the fixed head (id,
 * location, owner, state, visibility) the fields are told apart by their values.
 */
export class TextListingParser {
  private current: ImageRecord | undefined;

  constructor(private readonly file: string, private readonly warn: Warn) {}

  /**
   * Read one line (bytes `buf[start..end)`); an image is handed to `emit` once the lines
   * that belong to it are read. Only the lines that carry something are decoded.
   */
  line(chunk: string, start: number, end: number, no: number, emit: (image: ImageRecord) => void): void {
    if (end === start) return;
    if (chunk.startsWith(EPHEMERAL, start) && end - start > EPHEMERAL.length + 1) {
      // Instance-store space: nothing to record; only its place matters.
      if (!this.current) this.warn({ file: this.file, line: no, message: 'BLOCKDEVICEMAPPING line before any IMAGE line, skipped' });
      return;
    }
    const text = chunk.slice(start, end);
    if (text.charCodeAt(0) <= 0x20 && text.trim() === '') return;
    const bad = (message: string): void => this.warn({ file: this.file, line: no, message });
    const fields = splitFields(text);
    const kind = fields[0]!;
    if (kind === 'IMAGE') {
      const image = parseImageLine(fields, this.file, no, bad);
      if (!image) return;
      if (this.current) emit(this.current);
      this.current = image;
    } else if (kind === 'BLOCKDEVICEMAPPING' || kind === 'TAG') {
      if (!this.current) bad(`${kind} line before any IMAGE line, skipped`);
      else if (kind === 'TAG') addTag(this.current, fields, bad);
      else addMapping(this.current, fields, bad);
    } else if (BINARY.test(text)) {
      bad('binary data, skipped');
    } else {
      bad(`not an IMAGE, BLOCKDEVICEMAPPING or TAG line (starts ${JSON.stringify(kind.slice(0, 40))}), skipped`);
    }
  }

  end(emit: (image: ImageRecord) => void): void {
    if (this.current) emit(this.current);
    this.current = undefined;
  }
}

const BINARY = /[\x00-\x08\x0e-\x1f]/;

/** `BLOCKDEVICEMAPPING<tab>EPHEMERAL<tab>device<tab>name`: a common line with nothing to keep. */
const EPHEMERAL = 'BLOCKDEVICEMAPPING\tEPHEMERAL\t';

function splitFields(text: string): string[] {
  // The record name ends at the first tab in tool output (a cheap test: no scan of the line).
  const tabbed = text.charCodeAt(5) === 9 || text.charCodeAt(3) === 9 || text.charCodeAt(18) === 9 || text.includes('\t');
  return tabbed ? text.split('\t') : text.trim().split(/\s+/);
}

const ARCHES = new Set(['i386', 'x86_64', 'arm64']);

/** The tail's fixed words, and the field each fills. */
const TAIL_VALUES = new Map<string, 'imageType' | 'platform' | 'rootDeviceType' | 'virtualizationType' | 'hypervisor'>([
  ['machine', 'imageType'], ['kernel', 'imageType'], ['ramdisk', 'imageType'],
  ['windows', 'platform'],
  ['instance-store', 'rootDeviceType'], ['ebs', 'rootDeviceType'],
  ['paravirtual', 'virtualizationType'], ['hvm', 'virtualizationType'],
  ['xen', 'hypervisor'], ['ovm', 'hypervisor'], ['nitro', 'hypervisor'], ['kvm', 'hypervisor'],
]);

function parseImageLine(fields: string[], file: string, no: number, bad: (m: string) => void): ImageRecord | undefined {
  const [, id, location, owner, state, visibility] = fields;
  if (id === undefined || !IMAGE_ID.test(id)) {
    bad(BINARY.test(fields.join('')) ? 'binary data, skipped' : `IMAGE line without an image id (${JSON.stringify((id ?? '').slice(0, 40))}), skipped`);
    return undefined;
  }
  if (visibility === undefined) {
    bad(`IMAGE line with ${fields.length} fields (at least 6: id, location, owner, state, public|private), skipped`);
    return undefined;
  }
  const image = emptyImage(id, file, no);
  image.location = location!;
  image.owner = owner!;
  image.state = state!;
  if (visibility === 'public' || visibility === 'private') image.public = visibility === 'public';
  else bad(`IMAGE ${id}: visibility ${JSON.stringify(visibility.slice(0, 40))} is neither public nor private`);
  readTail(image, fields.slice(6));
  if (image.rootDeviceType === '' && image.location.endsWith('.manifest.xml')) image.rootDeviceType = 'instance-store';
  return image;
}

/**
 * The fields after the visibility: [product codes], architecture, image type, kernel,
 * ramdisk, platform, root device type, virtualization type, hypervisor. Each is known by
 * its value, so empty fields (tabs) and missing ones (spaces) read alike.
 */
function readTail(image: ImageRecord, tail: string[]): void {
  let archAt = 0;
  while (archAt < tail.length && !ARCHES.has(tail[archAt]!)) archAt++;
  if (archAt === tail.length) return;
  // Before the architecture: the product-codes column (15-field form), possibly empty.
  if (archAt > 0 && tail.slice(0, archAt).some((f) => f !== '')) {
    image.productCodes = tail.slice(0, archAt).flatMap((f) => f.split(',')).map((f) => f.trim()).filter(Boolean);
  }
  image.arch = tail[archAt]!;
  for (let i = archAt + 1; i < tail.length; i++) {
    const f = tail[i]!;
    if (f === '') continue;
    const known = TAIL_VALUES.get(f);
    if (known) {
      if (!image[known]) image[known] = f;
    } else if (f.startsWith('aki-') || f.startsWith('eki-')) {
      if (!image.kernelId) image.kernelId = f;
    } else if (f.startsWith('ari-') || f.startsWith('eri-')) {
      if (!image.ramdiskId) image.ramdiskId = f;
    }
  }
}

function addTag(image: ImageRecord, fields: string[], bad: (m: string) => void): void {
  // TAG  image  <id>  <key>  <value>
  const [, , id, key, ...value] = fields;
  if (key === undefined) return bad('TAG line with fewer than 4 fields, skipped');
  if (id !== image.id) return bad(`TAG for ${id} follows IMAGE ${image.id}, skipped`);
  image.tags[key] = value.join(' ');
  if (key === 'Name' && image.name === undefined) image.name = image.tags[key];
}

function addMapping(image: ImageRecord, fields: string[], bad: (m: string) => void): void {
  // BLOCKDEVICEMAPPING  EBS  <device>  <snapshot>  <size> ...  |  EPHEMERAL  <device>  <virtual>
  const [, kind, device, snapshot] = fields;
  if (device === undefined) return bad('BLOCKDEVICEMAPPING line with fewer than 3 fields, skipped');
  if (kind !== 'EBS') return;
  if (image.rootDeviceType === '') image.rootDeviceType = 'ebs';
  if (!snapshot?.startsWith('snap-')) return;
  // The text form does not name the root device: sda1, sda or xvda is the root; failing
  // those, the first EBS mapping.
  if (/^(\/dev\/)?(sda1?|xvda1?)$/.test(device)) {
    image.snapshot = snapshot;
    image.rootDeviceName = device;
  } else if (image.rootDeviceName === '' && image.snapshot === undefined) {
    image.snapshot = snapshot;
  }
}
