import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';

/**
 * Fresh OpenSSH host keys, written at translate time so that the first boot's sshd has
 * keys (Debian's ssh unit runs `sshd -t`, which fails without any) and no two outputs
 * share one. Formats as OpenSSH reads them: RSA as PKCS#1 PEM and ECDSA as SEC1 PEM (read
 * since OpenSSH 5.x), Ed25519 in OpenSSH's own "openssh-key-v1" container (the only one it
 * reads for Ed25519; PROTOCOL.key in OpenSSH's source). Public keys are the one-line
 * "type base64 comment" of RFC 4253 §6.6 / RFC 5656 §3.1 / RFC 8709 §4.
 */

export type HostKeyType = 'rsa' | 'ecdsa' | 'ed25519';

export interface HostKey {
  privateKey: string;
  publicKey: string;
}

const ECDSA_CURVES: Readonly<Record<string, string>> = { nistp256: 'prime256v1', nistp384: 'secp384r1', nistp521: 'secp521r1' };

/** An SSH wire-format string: uint32 length then the bytes. */
function sshString(data: Uint8Array | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

/** An SSH mpint from a big-endian unsigned magnitude: a leading zero when the top bit is set. */
function mpint(magnitude: Buffer): Buffer {
  let m = magnitude;
  while (m.length > 1 && m[0] === 0) m = m.subarray(1);
  return sshString(m[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);
}

function jwk(key: KeyObject): Record<string, string> {
  return key.export({ format: 'jwk' }) as Record<string, string>;
}

const b64u = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'base64url');

function rsaKey(comment: string): HostKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 3072 });
  const j = jwk(publicKey);
  const blob = Buffer.concat([sshString('ssh-rsa'), mpint(b64u(j.e)), mpint(b64u(j.n))]);
  return {
    privateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }) as string,
    publicKey: `ssh-rsa ${blob.toString('base64')} ${comment}\n`,
  };
}

function ecdsaKey(curve: string, comment: string): HostKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: ECDSA_CURVES[curve]! });
  const j = jwk(publicKey);
  const point = Buffer.concat([Buffer.from([4]), b64u(j.x), b64u(j.y)]);
  const type = `ecdsa-sha2-${curve}`;
  const blob = Buffer.concat([sshString(type), sshString(curve), sshString(point)]);
  return {
    privateKey: privateKey.export({ type: 'sec1', format: 'pem' }) as string,
    publicKey: `${type} ${blob.toString('base64')} ${comment}\n`,
  };
}

function ed25519Key(comment: string): HostKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const j = jwk(privateKey);
  const pub = b64u(j.x);
  const seed = b64u(j.d);
  const pubBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4);
  let secret = Buffer.concat([check, check, sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  // Padded with 1, 2, 3... to the cipher block size ("none": 8).
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const nkeys = Buffer.alloc(4);
  nkeys.writeUInt32BE(1);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0', 'latin1'), sshString('none'), sshString('none'), sshString(''), nkeys, sshString(pubBlob), sshString(secret)]);
  const lines = body.toString('base64').match(/.{1,70}/g) ?? [];
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${pubBlob.toString('base64')} ${comment}\n`,
  };
}

/** The key type a host key file holds by its name (ssh_host_<type>_key), if we make that type. */
export function hostKeyType(path: string): HostKeyType | undefined {
  const m = /\/ssh_host_(rsa|ecdsa|ed25519)_key$/.exec(path);
  return m ? (m[1] as HostKeyType) : undefined;
}

/** The ECDSA curve of an existing public key line ("ecdsa-sha2-nistp384 ..."), nistp256 by default. */
export function ecdsaCurve(publicLine: string | undefined): string {
  const m = /^ecdsa-sha2-(nistp256|nistp384|nistp521)\b/.exec(publicLine ?? '');
  return m ? m[1]! : 'nistp256';
}

export function makeHostKey(type: HostKeyType, comment: string, curve = 'nistp256'): HostKey {
  if (type === 'rsa') return rsaKey(comment);
  if (type === 'ecdsa') return ecdsaKey(curve, comment);
  return ed25519Key(comment);
}
