/**
 * Every error amitrans raises on purpose is an ImageError with a stable `code`, so callers
 * (and the CLI) can tell bad input from bugs. Parsers work on buffers and do not know the
 * file name; whoever opened the file attaches it with `inFile()` as the error passes by.
 */
export type ErrorCode =
  | 'E_OUT_OF_RANGE' // a read or write past the end of a device or structure
  | 'E_BAD_OFFSET' // negative, fractional or unsafe offset or length
  | 'E_TOO_LARGE' // a size beyond 2^53 or beyond a sane limit for the structure
  | 'E_READ_ONLY' // a write to a device opened read-only
  | 'E_CLOSED' // use after close
  | 'E_TRUNCATED' // a file shorter than its structures say
  | 'E_BAD_MAGIC' // a signature that does not match
  | 'E_BAD_CHECKSUM'
  | 'E_BAD_KEY' // a key that does not open (or a signature that does not verify with) what it should
  | 'E_CORRUPT' // fields that contradict each other or the spec
  | 'E_OVERLAP' // partitions or tables that overlap
  | 'E_LOOP' // a chain of tables that points back into itself
  | 'E_UNSUPPORTED' // a valid feature amitrans does not handle
  | 'E_UNKNOWN_FORMAT'
  | 'E_FILE_TYPE' // a FIFO, socket, character device or directory where an image file is needed
  | 'E_SAME_FILE' // an output that is one of the inputs
  | 'E_CHANGED' // a remote object that changed while it was being read (its ETag moved)
  | 'E_USAGE' // the request itself is wrong: an unknown format, option key or value (the CLI exits 2)
  | 'E_IO';

export interface ErrorPlace {
  /** The file (or URL) the structure was read from. */
  file?: string;
  /** The on-disk structure, named after the spec: "MBR", "EBR", "ext superblock", "VHD footer". */
  structure?: string;
  /** Byte offset of the structure or field in the file or device. */
  offset?: number;
  cause?: unknown;
}

export class ImageError extends Error {
  readonly code: ErrorCode;
  readonly detail: string;
  readonly file: string | undefined;
  readonly structure: string | undefined;
  readonly offset: number | undefined;

  constructor(code: ErrorCode, detail: string, place: ErrorPlace = {}) {
    super(formatMessage(detail, place), place.cause === undefined ? undefined : { cause: place.cause });
    this.name = 'ImageError';
    this.code = code;
    this.detail = detail;
    this.file = place.file;
    this.structure = place.structure;
    this.offset = place.offset;
  }

  /** The same error, naming the file it came from (unless it already names one). */
  inFile(file: string): ImageError {
    if (this.file !== undefined) return this;
    return new ImageError(this.code, this.detail, {
      file,
      structure: this.structure,
      offset: this.offset,
      cause: this.cause,
    });
  }

  /** The same error with its offset moved by `delta` (a structure parsed out of a larger device). */
  shifted(delta: number): ImageError {
    if (this.offset === undefined || delta === 0) return this;
    return new ImageError(this.code, this.detail, {
      file: this.file,
      structure: this.structure,
      offset: this.offset + delta,
      cause: this.cause,
    });
  }
}

function formatMessage(detail: string, place: ErrorPlace): string {
  const where: string[] = [];
  if (place.file !== undefined) where.push(place.file);
  if (place.structure !== undefined) {
    where.push(place.offset === undefined ? place.structure : `${place.structure} at byte ${place.offset}`);
  } else if (place.offset !== undefined) {
    where.push(`byte ${place.offset}`);
  }
  return where.length > 0 ? `${where.join(': ')}: ${detail}` : detail;
}

export function isImageError(err: unknown, code?: ErrorCode): err is ImageError {
  return err instanceof ImageError && (code === undefined || err.code === code);
}

/** Attach a file name to an ImageError thrown by `fn`; other errors pass through untouched. */
export async function inFile<T>(file: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw err instanceof ImageError ? err.inFile(file) : err;
  }
}
