import { ImageError } from '@amitrans/block';

/** Where a remote image lives: an S3 object, or a plain HTTP(S) URL. */
export type RemoteLocation =
  | { readonly kind: 's3'; readonly bucket: string; readonly key: string }
  | { readonly kind: 'http'; readonly url: URL };

/** True when `name` is a URL amitrans reads remotely rather than a local path. */
export function isRemote(name: string): boolean {
  return /^(s3|https?):\/\//i.test(name);
}

/** Parse s3://bucket/key, http://… or https://…; E_USAGE on a malformed one. */
export function parseRemote(name: string): RemoteLocation {
  const s3 = /^s3:\/\/([^/]+)\/(.+)$/i.exec(name);
  if (s3) return { kind: 's3', bucket: s3[1]!, key: s3[2]! };
  if (/^s3:\/\//i.test(name)) {
    throw new ImageError('E_USAGE', `'${displayName(name)}' is not s3://bucket/key`);
  }
  try {
    const url = new URL(name);
    if (url.protocol === 'http:' || url.protocol === 'https:') return { kind: 'http', url };
  } catch {
    // fall through to the usage error
  }
  throw new ImageError('E_USAGE', `'${displayName(name)}' is not an http(s):// or s3:// URL`);
}

// Query parameters of presigned URLs that grant access: never shown.
const SECRET_PARAMS = /^(x-amz-(signature|credential|security-token)|signature|awsaccesskeyid|sig|token|access_token|x-goog-signature|x-goog-credential)$/i;

/**
 * A URL as it may be printed: user:password removed and the signing parameters of a
 * presigned URL replaced by "…", so no error, progress line or --json report leaks them.
 */
export function displayName(name: string): string {
  if (!/^https?:\/\//i.test(name)) return name;
  let url: URL;
  try {
    url = new URL(name);
  } catch {
    return name.replace(/\/\/[^/@]*@/, '//');
  }
  url.username = '';
  url.password = '';
  for (const key of [...url.searchParams.keys()]) {
    if (SECRET_PARAMS.test(key)) url.searchParams.set(key, 'REDACTED');
  }
  return url.toString();
}

/** Remove credentials the environment holds from any text we are about to show. */
export function redact(text: string): string {
  let out = text;
  for (const v of ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) {
    const secret = process.env[v];
    if (secret && secret.length >= 4) out = out.split(secret).join('…');
  }
  return out.replace(/(https?:\/\/)[^/@\s]*@/gi, '$1').replace(/(X-Amz-(Signature|Credential|Security-Token)=)[^&\s]+/gi, '$1…');
}
