import { ImageError } from '@amitrans/block';

/** A descriptor larger than this is not a VMDK descriptor. */
export const MAX_DESCRIPTOR_BYTES = 1024 * 1024;

export interface ExtentLine {
  access: 'RW' | 'RDONLY' | 'NOACCESS';
  /** Size in sectors. */
  sectors: number;
  type: string;
  file: string;
  /** Offset into the file, in sectors (FLAT extents). */
  offset: number;
}

export interface Descriptor {
  version: number;
  cid: number;
  parentCid: number;
  createType: string;
  extents: ExtentLine[];
  /** `ddb.*` keys with their (unquoted) values. */
  ddb: Record<string, string>;
}

const STRUCT = 'VMDK descriptor';

function unquote(v: string): string {
  const t = v.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

/** Parse descriptor text (LF or CRLF; indentation tolerated; NUL padding ends it). */
export function parseDescriptor(bytes: Uint8Array, offset = 0): Descriptor {
  if (bytes.length > MAX_DESCRIPTOR_BYTES) {
    throw new ImageError('E_TOO_LARGE', `descriptor of ${bytes.length} bytes is larger than ${MAX_DESCRIPTOR_BYTES}`, { structure: STRUCT, offset });
  }
  const nul = bytes.indexOf(0);
  const text = Buffer.from(nul < 0 ? bytes : bytes.subarray(0, nul)).toString('utf8');
  const d: Descriptor = { version: 1, cid: 0xffffffff, parentCid: 0xffffffff, createType: '', extents: [], ddb: {} };
  let seenHeader = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) {
      if (/^#\s*Disk DescriptorFile/i.test(line)) seenHeader = true;
      continue;
    }
    const extent = /^(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?/.exec(line);
    if (extent) {
      d.extents.push({
        access: extent[1] as ExtentLine['access'],
        sectors: Number(extent[2]),
        type: extent[3]!.toUpperCase(),
        file: extent[4] ?? '',
        offset: Number(extent[5] ?? 0),
      });
      if (!Number.isSafeInteger(d.extents[d.extents.length - 1]!.sectors * 512)) {
        throw new ImageError('E_TOO_LARGE', `extent of ${extent[2]} sectors is beyond 2^53 bytes`, { structure: STRUCT, offset });
      }
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw new ImageError('E_CORRUPT', `descriptor line is neither key=value nor an extent: ${JSON.stringify(line.slice(0, 80))}`, { structure: STRUCT, offset });
    const key = line.slice(0, eq).trim();
    const value = unquote(line.slice(eq + 1));
    if (key.startsWith('ddb.')) d.ddb[key] = value;
    else if (key === 'version') d.version = Number(value);
    else if (key === 'CID') d.cid = parseInt(value, 16);
    else if (key === 'parentCID') d.parentCid = parseInt(value, 16);
    else if (key === 'createType') d.createType = value;
    seenHeader = true;
  }
  if (!seenHeader) throw new ImageError('E_BAD_MAGIC', 'not a VMDK descriptor', { structure: STRUCT, offset });
  return d;
}

/** True when the bytes look like the start of a text descriptor file. */
export function looksLikeDescriptor(head: Uint8Array): boolean {
  const text = Buffer.from(head.subarray(0, 1024)).toString('latin1');
  return /^\s*#\s*Disk DescriptorFile/i.test(text) || /^\s*(version\s*=|createType\s*=)/m.test(text.slice(0, 512));
}

export interface DescriptorSettings {
  cid: number;
  createType: string;
  extentSectors: number;
  extentType: 'SPARSE' | 'FLAT';
  extentFile: string;
  adapterType: string;
  hwVersion: string;
  toolsVersion: string;
}

/** The geometry QEMU and VMware write: IDE 16 heads, SCSI 255; 63 sectors; cylinders floored, capped. */
export function geometry(sectors: number, adapterType: string): { cylinders: number; heads: number; sectors: number } {
  const heads = adapterType === 'ide' ? 16 : 255;
  return { cylinders: Math.min(65535, Math.floor(sectors / (heads * 63))), heads, sectors: 63 };
}

/**
 * Descriptor text: LF line ends and no indentation (VirtualBox cannot parse indented
 * descriptors), keys in QEMU's order.
 */
export function serializeDescriptor(s: DescriptorSettings): string {
  const g = geometry(s.extentSectors, s.adapterType);
  return [
    '# Disk DescriptorFile',
    'version=1',
    `CID=${s.cid.toString(16).padStart(8, '0')}`,
    'parentCID=ffffffff',
    `createType="${s.createType}"`,
    '',
    '# Extent description',
    `RW ${s.extentSectors} ${s.extentType} "${s.extentFile}"${s.extentType === 'FLAT' ? ' 0' : ''}`,
    '',
    '# The Disk Data Base',
    '#DDB',
    '',
    `ddb.virtualHWVersion = "${s.hwVersion}"`,
    `ddb.geometry.cylinders = "${g.cylinders}"`,
    `ddb.geometry.heads = "${g.heads}"`,
    `ddb.geometry.sectors = "${g.sectors}"`,
    `ddb.adapterType = "${s.adapterType}"`,
    `ddb.toolsVersion = "${s.toolsVersion}"`,
    '',
  ].join('\n');
}
