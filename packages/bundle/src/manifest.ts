import { escapeText } from './xml.js';

/**
 * manifest.xml, version 2007-10-10, as euca2ools 3.4 writes it (bundle/manifest.py,
 * lxml.objectify): the declaration `<?xml version='1.0' encoding='ASCII'?>` and a newline,
 * then the document on one line with no trailing newline, empty elements self-closed.
 * The signature covers the exact bytes of <machine_configuration> followed by <image>.
 */
export const MANIFEST_VERSION = '2007-10-10';
export const ARCHITECTURES = ['i386', 'x86_64', 'armhf', 'ppc', 'ppc64', 'ppc64le'] as const;
export const IMAGE_TYPES = ['machine', 'kernel', 'ramdisk'] as const;
export type ImageType = (typeof IMAGE_TYPES)[number];
/** Eucalyptus fetches manifests only up to 5 MiB; a bigger one is not a manifest. */
export const MAX_MANIFEST_BYTES = 5 * 1024 * 1024;

export interface BlockDeviceMapping {
  readonly virtual: string;
  readonly device: string;
}

export interface ManifestPart {
  readonly index: number;
  readonly filename: string;
  /** Hex SHA-1 of the encrypted part file. */
  readonly digest: string;
}

export interface Manifest {
  readonly version: string;
  readonly bundler: { readonly name: string; readonly version: string; readonly release: string };
  readonly architecture: string;
  readonly blockDeviceMappings: readonly BlockDeviceMapping[];
  readonly productCodes: readonly string[];
  /** An aki-/eki- id, or "true" on a kernel bundle. */
  readonly kernelId?: string | undefined;
  readonly ramdiskId?: string | undefined;
  readonly name: string;
  readonly user: string;
  readonly imageType: ImageType;
  /** Hex SHA-1 of the tar stream. */
  readonly digest: string;
  readonly digestAlgorithm: string;
  /** Bytes of the unbundled image. */
  readonly size: number;
  /** Bytes of all parts together. */
  readonly bundledSize: number;
  readonly encryptionAlgorithm: string;
  readonly ec2EncryptedKey: string;
  /** Empty when the bundle was made without a user certificate. */
  readonly userEncryptedKey: string;
  readonly ec2EncryptedIv: string;
  readonly userEncryptedIv: string;
  readonly parts: readonly ManifestPart[];
  /** Hex RSA-SHA1, or `UNSIGNED`. */
  readonly signature: string;
}

/** A parsed manifest and the bytes its signature covers. */
export interface ParsedManifest {
  readonly manifest: Manifest;
  readonly signedText: string;
}

export type ManifestFields = Omit<Manifest, 'signature' | 'version'>;

function el(name: string, text: string, attrs = ''): string {
  return text === '' ? `<${name}${attrs}/>` : `<${name}${attrs}>${escapeText(text)}</${name}>`;
}

function machineConfigurationXml(m: ManifestFields): string {
  let out = el('architecture', m.architecture);
  if (m.imageType === 'machine') {
    if (m.blockDeviceMappings.length > 0) {
      const sorted = [...m.blockDeviceMappings].sort((a, b) => (a.virtual < b.virtual ? -1 : a.virtual > b.virtual ? 1 : 0));
      out += `<block_device_mapping>${sorted.map((b) => `<mapping>${el('virtual', b.virtual)}${el('device', b.device)}</mapping>`).join('')}</block_device_mapping>`;
    }
    if (m.productCodes.length > 0) out += `<product_codes>${m.productCodes.map((c) => el('product_code', c)).join('')}</product_codes>`;
  }
  if (m.kernelId) out += el('kernel_id', m.kernelId);
  if (m.ramdiskId) out += el('ramdisk_id', m.ramdiskId);
  return `<machine_configuration>${out}</machine_configuration>`;
}

function imageXml(m: ManifestFields): string {
  const alg = ` algorithm="${m.encryptionAlgorithm}"`;
  const parts = m.parts.map((p) => `<part index="${p.index}">${el('filename', p.filename)}${el('digest', p.digest, ' algorithm="SHA1"')}</part>`).join('');
  return '<image>' +
    el('name', m.name) +
    el('user', m.user) +
    // EC2 wants <type> right after <user> (euca2ools' comment).
    el('type', m.imageType) +
    el('digest', m.digest, ` algorithm="${m.digestAlgorithm}"`) +
    el('size', String(m.size)) +
    el('bundled_size', String(m.bundledSize)) +
    el('ec2_encrypted_key', m.ec2EncryptedKey, alg) +
    el('user_encrypted_key', m.userEncryptedKey, alg) +
    el('ec2_encrypted_iv', m.ec2EncryptedIv) +
    el('user_encrypted_iv', m.userEncryptedIv) +
    (parts === '' ? `<parts count="0"/>` : `<parts count="${m.parts.length}">${parts}</parts>`) +
    '</image>';
}

/**
 * The manifest file's text. `sign` gets the bytes to sign and returns the hex signature;
 * without it the signature is `UNSIGNED`, as euca2ools writes without a private key.
 */
export function manifestXml(m: ManifestFields, sign?: (signed: string) => string): string {
  const signed = machineConfigurationXml(m) + imageXml(m);
  const signature = sign ? sign(signed) : 'UNSIGNED';
  const b = m.bundler;
  return `<?xml version='1.0' encoding='ASCII'?>\n<manifest>${el('version', MANIFEST_VERSION)}` +
    `<bundler>${el('name', b.name)}${el('version', b.version)}${el('release', b.release)}</bundler>` +
    `${signed}${el('signature', signature)}</manifest>`;
}
