import { ImageError, type ErrorCode } from '@amitrans/block';

/**
 * A failed operation on a path inside the guest filesystem. `errno` is the POSIX name
 * libext2fs gave ('ENOENT', 'EEXIST', 'ENOTDIR', 'EISDIR', 'ENOTEMPTY', 'ENOSPC', ...),
 * `path` the guest path. The ImageError code says what kind of failure it is for the
 * CLI: a missing or clashing path is E_IO (the block contract has no finer code),
 * a full filesystem is E_TOO_LARGE, damage libext2fs trips over is E_CORRUPT.
 */
export class ExtFsError extends ImageError {
  readonly errno: string;
  readonly path: string;

  constructor(code: ErrorCode, errno: string, path: string, detail: string, cause?: unknown) {
    super(code, `${path}: ${detail} (${errno})`, { structure: 'ext filesystem', cause });
    this.name = 'ExtFsError';
    this.errno = errno;
    this.path = path;
  }
}

const DESCRIPTIONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  ENOTEMPTY: 'directory not empty',
  EINVAL: 'invalid argument',
  ENOSPC: 'no space left in the filesystem',
  EFBIG: 'file too large',
  EMLINK: 'too many levels of symbolic links',
  ELOOP: 'too many levels of symbolic links',
  EIO: 'libext2fs could not read or write its metadata',
  EOPNOTSUPP: 'not supported by libext2fs',
  EROFS: 'the filesystem is open read-only',
  ENAMETOOLONG: 'name too long',
};

export function codeForErrno(errno: string): ErrorCode {
  switch (errno) {
    case 'ENOSPC':
    case 'EFBIG':
    case 'ENAMETOOLONG':
      return 'E_TOO_LARGE';
    case 'EIO':
    case 'UNKNOWN':
      return 'E_CORRUPT';
    case 'EOPNOTSUPP':
      return 'E_UNSUPPORTED';
    case 'EROFS':
      return 'E_READ_ONLY';
    case 'EMLINK':
    case 'ELOOP':
      return 'E_LOOP';
    default:
      return 'E_IO';
  }
}

export function pathError(errno: string, path: string, detail?: string, cause?: unknown): ExtFsError {
  return new ExtFsError(codeForErrno(errno), errno, path, detail ?? DESCRIPTIONS[errno] ?? 'failed', cause);
}
