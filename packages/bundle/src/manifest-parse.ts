import { ImageError } from '@amitrans/block';
import { IMAGE_TYPES, MAX_MANIFEST_BYTES, type ImageType, type Manifest, type ManifestPart, type ParsedManifest } from './manifest.js';
import { parseXml, type XmlElement } from './xml.js';

/** Parts a manifest may list: 100,000 parts of 10 MiB is a 1 TB bundle. */
export const MAX_PARTS = 100_000;

/**
 * Read a manifest (euca2ools' or ec2-ami-tools'), check it, and keep the exact text its
 * signature covers (the source bytes of <machine_configuration> and <image>, as
 * ec2-ami-tools takes them). Errors name the element.
 */
export function parseManifest(bytes: Uint8Array | string): ParsedManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new ImageError('E_TOO_LARGE', `a manifest of ${bytes.length} bytes is beyond ${MAX_MANIFEST_BYTES}`, { structure: 'manifest' });
  }
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8');
  const root = parseXml(text, 'manifest');
  if (root.name !== 'manifest') throw bad(root, `the root element is <${root.name}>, not <manifest>`);
  const mc = child(root, 'machine_configuration');
  const image = child(root, 'image');
  const bundler = optional(root, 'bundler');
  const type = childText(image, 'type', 'machine');
  if (!(IMAGE_TYPES as readonly string[]).includes(type)) throw bad(child(image, 'type'), `unknown image type ${JSON.stringify(type)}`);
  const keyEl = child(image, 'ec2_encrypted_key');
  const manifest: Manifest = {
    version: childText(root, 'version'),
    bundler: {
      name: bundler ? childText(bundler, 'name', '') : '',
      version: bundler ? childText(bundler, 'version', '') : '',
      release: bundler ? childText(bundler, 'release', '') : '',
    },
    architecture: childText(mc, 'architecture'),
    blockDeviceMappings: (optional(mc, 'block_device_mapping')?.children ?? [])
      .filter((m) => m.name === 'mapping')
      .map((m) => ({ virtual: childText(m, 'virtual'), device: childText(m, 'device') })),
    productCodes: (optional(mc, 'product_codes')?.children ?? []).filter((c) => c.name === 'product_code').map((c) => c.text.trim()),
    kernelId: optional(mc, 'kernel_id')?.text.trim(),
    ramdiskId: optional(mc, 'ramdisk_id')?.text.trim(),
    name: childText(image, 'name'),
    user: childText(image, 'user', ''),
    imageType: type as ImageType,
    digest: hexText(child(image, 'digest'), 40),
    digestAlgorithm: child(image, 'digest').attributes.get('algorithm') ?? 'SHA1',
    size: count(child(image, 'size')),
    bundledSize: count(child(image, 'bundled_size')),
    encryptionAlgorithm: keyEl.attributes.get('algorithm') ?? 'AES-128-CBC',
    ec2EncryptedKey: hexText(keyEl),
    userEncryptedKey: hexText(child(image, 'user_encrypted_key')),
    ec2EncryptedIv: hexText(child(image, 'ec2_encrypted_iv')),
    userEncryptedIv: hexText(child(image, 'user_encrypted_iv')),
    parts: readParts(child(image, 'parts')),
    signature: childText(root, 'signature', ''),
  };
  if (manifest.digestAlgorithm.toUpperCase() !== 'SHA1') throw bad(child(image, 'digest'), `digest algorithm ${manifest.digestAlgorithm} is not SHA1`);
  if (manifest.encryptionAlgorithm !== 'AES-128-CBC') throw bad(keyEl, `encryption algorithm ${manifest.encryptionAlgorithm} is not AES-128-CBC`);
  return { manifest, signedText: text.slice(mc.start, mc.end) + text.slice(image.start, image.end) };
}

function bad(e: XmlElement, detail: string): ImageError {
  return new ImageError('E_CORRUPT', detail, { structure: `manifest <${e.name}>`, offset: e.start });
}

function optional(parent: XmlElement, name: string): XmlElement | undefined {
  return parent.children.find((c) => c.name === name);
}

function child(parent: XmlElement, name: string): XmlElement {
  const c = optional(parent, name);
  if (!c) throw new ImageError('E_CORRUPT', `<${parent.name}> has no <${name}>`, { structure: `manifest <${name}>`, offset: parent.start });
  return c;
}

function childText(parent: XmlElement, name: string, fallback?: string): string {
  const c = optional(parent, name);
  if (!c) {
    if (fallback !== undefined) return fallback;
    return child(parent, name).text;
  }
  return c.text.trim();
}

function hexText(e: XmlElement, length?: number): string {
  const t = e.text.trim();
  if (t === '' && length === undefined) return '';
  if (!/^[0-9a-fA-F]+$/.test(t) || (length !== undefined && t.length !== length)) {
    throw bad(e, `<${e.name}> ${JSON.stringify(t.slice(0, 80))} is not ${length ? `${length} hex digits` : 'hex'}`);
  }
  return t.toLowerCase();
}

function count(e: XmlElement): number {
  const t = e.text.trim();
  const n = /^[0-9]{1,16}$/.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(n)) throw bad(e, `<${e.name}> ${JSON.stringify(t.slice(0, 40))} is not a byte count`);
  return n;
}

function readParts(parts: XmlElement): ManifestPart[] {
  const list = parts.children.filter((c) => c.name === 'part');
  const declared = parts.attributes.get('count');
  if (declared !== undefined && declared !== String(list.length)) throw bad(parts, `count="${declared}" but ${list.length} <part> elements`);
  if (list.length === 0) throw bad(parts, 'the manifest lists no parts');
  if (list.length > MAX_PARTS) throw bad(parts, `${list.length} parts is beyond ${MAX_PARTS}`);
  const out = list.map((p): ManifestPart => {
    const index = Number(p.attributes.get('index'));
    const filename = childText(p, 'filename');
    // Parts are fetched next to the manifest: a name with a path would reach elsewhere.
    if (filename === '' || filename === '.' || filename === '..' || /[/\\\0]/.test(filename)) {
      throw bad(p, `part file name ${JSON.stringify(filename)} is not a plain file name`);
    }
    return { index, filename, digest: hexText(child(p, 'digest'), 40) };
  });
  out.sort((a, b) => a.index - b.index);
  out.forEach((p, i) => {
    if (p.index !== i) throw bad(parts, `part indexes are not 0 to ${out.length - 1} (found ${p.index} at position ${i})`);
  });
  return out;
}
