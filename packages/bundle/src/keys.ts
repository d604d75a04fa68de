import { X509Certificate, constants, createPrivateKey, createSign, createVerify, privateDecrypt, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { ImageError } from '@amitrans/block';

/** The bundle's AES key and IV as both tools hold them: 32 lowercase hex digits each. */
export interface BundleKey {
  readonly key: string;
  readonly iv: string;
}

export function newBundleKey(): BundleKey {
  return { key: randomBytes(16).toString('hex'), iv: randomBytes(16).toString('hex') };
}

/** The public key of a PEM certificate (the user's or the cloud's). */
export function certificateKey(pem: string | Buffer, file: string): KeyObject {
  try {
    return new X509Certificate(pem).publicKey;
  } catch (err) {
    throw new ImageError('E_CORRUPT', `not a PEM X.509 certificate: ${(err as Error).message}`, { file, cause: err });
  }
}

export function privateKey(pem: string | Buffer, file: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new ImageError('E_CORRUPT', `not a PEM private key: ${(err as Error).message}`, { file, cause: err });
  }
  if (key.asymmetricKeyType !== 'rsa') throw new ImageError('E_UNSUPPORTED', `the key is ${key.asymmetricKeyType}, bundles use RSA`, { file });
  return key;
}

/**
 * RSA PKCS#1 v1.5 encryption of the hex string (not the raw 16 bytes: both tools wrap the
 * ASCII digits), as hex, for the manifest.
 */
export function wrapHex(hex: string, cert: KeyObject): string {
  return publicEncrypt({ key: cert, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(hex, 'latin1')).toString('hex');
}

/**
 * Undo `wrapHex`. Node refuses PKCS#1 v1.5 decryption (CVE-2023-46809, a timing oracle for
 * servers), so the raw RSA result is unpadded here; a command run once on a local key is
 * no oracle. Anything but `00 02 <8+ non-zero bytes> 00 <32 hex digits>` is a wrong key.
 */
export function unwrapHex(wrapped: string, key: KeyObject, element: string): string | undefined {
  if (!/^([0-9a-fA-F]{2})+$/.test(wrapped)) {
    throw new ImageError('E_CORRUPT', `<${element}> is not hex`, { structure: `manifest <${element}>` });
  }
  const bytes = Buffer.from(wrapped, 'hex');
  const modulus = (key.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
  if (bytes.length !== modulus) return undefined;
  let m: Buffer;
  try {
    m = privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, bytes);
  } catch {
    return undefined;
  }
  if (m[0] !== 0 || m[1] !== 2) return undefined;
  const sep = m.indexOf(0, 2);
  if (sep < 10) return undefined;
  const text = m.subarray(sep + 1).toString('latin1');
  return /^[0-9a-fA-F]{32}$/.test(text) ? text.toLowerCase() : undefined;
}

/** RSA-SHA1 (PKCS#1 v1.5) over `data`, hex: the manifest's signature. */
export function signHex(data: string | Buffer, key: KeyObject): string {
  return createSign('sha1').update(data).sign(key).toString('hex');
}

export function verifyHex(data: string | Buffer, signature: string, cert: KeyObject): boolean {
  if (!/^([0-9a-fA-F]{2})+$/.test(signature)) return false;
  return createVerify('sha1').update(data).verify(cert, Buffer.from(signature, 'hex'));
}
