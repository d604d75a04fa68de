import { ImageError, type ErrorCode, type ErrorPlace } from '@amitrans/block';

/**
 * Why an appliance was refused. Each is also an ImageError with a code, so callers that
 * only know ImageError still get a clean message; callers that care can switch on `reason`.
 */
export type OvaRefusal =
  | 'unsafe-name' // an entry name or href that climbs out of the archive (.., /abs, \, URL)
  | 'missing-file' // the OVF (or manifest) names a file the archive does not hold
  | 'manifest-mismatch' // a digest in the manifest does not match the file
  | 'entry-overrun' // data runs past its tar entry (a size field too small) or past the archive
  | 'no-descriptor' // no .ovf in the archive
  | 'bad-descriptor'; // the OVF is not well-formed or contradicts itself

export class OvaError extends ImageError {
  readonly reason: OvaRefusal;

  constructor(reason: OvaRefusal, code: ErrorCode, detail: string, place: ErrorPlace = {}) {
    super(code, detail, place);
    this.name = 'OvaError';
    this.reason = reason;
  }

  override inFile(file: string): ImageError {
    if (this.file !== undefined) return this;
    return new OvaError(this.reason, this.code, this.detail, { file, structure: this.structure, offset: this.offset, cause: this.cause });
  }
}

export function isOvaError(err: unknown, reason?: OvaRefusal): err is OvaError {
  return err instanceof OvaError && (reason === undefined || err.reason === reason);
}
