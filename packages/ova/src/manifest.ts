import { ImageError } from '@amitrans/block';

/** Digest algorithms an OVF manifest may name, with node's crypto names. */
export const MANIFEST_ALGORITHMS = { SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' } as const;
export type ManifestAlgorithm = keyof typeof MANIFEST_ALGORITHMS;

export interface ManifestLine {
  algorithm: ManifestAlgorithm;
  file: string;
  /** Lower-case hex. */
  digest: string;
}

const STRUCT = 'OVF manifest';
const HEX_LENGTH: Record<ManifestAlgorithm, number> = { SHA1: 40, SHA256: 64, SHA512: 128 };

/**
 * One line per file, exactly `SHA1(name)= hex` (no space before the parenthesis, one
 * after the '='): VMware reads the algorithm as everything before '(' and rejects
 * `sha256sum --tag`'s `SHA256 (name) = hex`.
 */
export function serializeManifest(lines: readonly ManifestLine[]): string {
  return lines.map((l) => `${l.algorithm}(${l.file})= ${l.digest}\n`).join('');
}

/**
 * Parse a manifest. Readers are lenient where writers must be exact: spaces around the
 * parenthesis and '=' and CRLF line ends are accepted, so manifests from tools that
 * wrote the `--tag` form still verify.
 */
export function parseManifest(text: string, offset = 0): ManifestLine[] {
  const out: ManifestLine[] = [];
  let at = offset;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() !== '') {
      const m = /^\s*(SHA1|SHA256|SHA512)\s*\((.*)\)\s*=\s*([0-9a-fA-F]+)\s*$/.exec(line);
      if (!m) throw new ImageError('E_CORRUPT', `manifest line is not ALG(name)= hex: ${JSON.stringify(line.slice(0, 120))}`, { structure: STRUCT, offset: at });
      const algorithm = m[1] as ManifestAlgorithm;
      if (m[3]!.length !== HEX_LENGTH[algorithm]) {
        throw new ImageError('E_CORRUPT', `${algorithm} digest of ${m[2]} has ${m[3]!.length} hex digits, not ${HEX_LENGTH[algorithm]}`, { structure: STRUCT, offset: at });
      }
      out.push({ algorithm, file: m[2]!, digest: m[3]!.toLowerCase() });
    }
    at += Buffer.byteLength(raw) + 1;
  }
  return out;
}
