import { readFileSync } from 'node:fs';
import { run } from '@amitrans/testkit';
import { certificateKey, privateKey } from '../src/index.js';
import type { KeyObject } from 'node:crypto';

export interface Identity {
  key: string;
  cert: string;
  pub: string;
  keyObject: KeyObject;
  certObject: KeyObject;
}

/** A throwaway RSA key and self-signed certificate made by openssl. */
export async function makeIdentity(dir: string, name: string): Promise<Identity> {
  const key = `${dir}/${name}.key`;
  const cert = `${dir}/${name}.crt`;
  const pub = `${dir}/${name}.pub`;
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-subj', `/CN=${name}`, '-days', '2']);
  await run('openssl', ['x509', '-in', cert, '-pubkey', '-noout', '-out', pub]);
  return { key, cert, pub, keyObject: privateKey(readFileSync(key), key), certObject: certificateKey(readFileSync(cert), cert) };
}

/** Run a shell pipeline (bash -o pipefail) and return stdout. */
export async function sh(script: string, cwd?: string): Promise<string> {
  return (await run('bash', ['-o', 'pipefail', '-c', script], cwd ? { cwd } : {})).stdout;
}

/** An element's text from manifest text (the oracle's own reading, by regular expression). */
export function elementText(xml: string, name: string): string {
  const m = new RegExp(`<${name}(?: [^>]*)?>([^<]*)</${name}>`).exec(xml);
  if (!m) throw new Error(`no <${name}> in the manifest`);
  return m[1]!;
}
