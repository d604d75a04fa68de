import { ImageError } from '@amitrans/block';

// OpenSSL's verdicts (as Node names them) for a chain that ends at no CA Node trusts.
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED',
]);
// The certificate is trusted but wrong for this server or this moment.
const INVALID = new Set(['ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_SIGNATURE_FAILURE', 'CERT_REVOKED']);

/**
 * A failed certificate check as a typed error naming the URL and what to do about it; not
 * retried (the next try would fail the same way). Undefined for any other error.
 */
export function certificateError(err: unknown, name: string): ImageError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  if (UNTRUSTED.has(code)) {
    return new ImageError('E_IO', `the server's TLS certificate is not signed by a trusted CA (${code}); ` +
      'if your own CA signed it, name the CA certificate (PEM) in NODE_EXTRA_CA_CERTS', { file: name, cause: err });
  }
  if (INVALID.has(code)) return new ImageError('E_IO', `the server's TLS certificate was refused (${code}: ${(err as Error).message})`, { file: name, cause: err });
  return undefined;
}
