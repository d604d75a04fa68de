/**
 * Errors of the fleet that are the user's input or environment, not a bug: the CLI prints
 * the message and exits 1 (2 for E_USAGE).
 */
export type FleetErrorCode =
  /** A work list that cannot be read: bad JSON, a missing column, a bad id, a duplicate. */
  | 'E_WORKLIST'
  /** A command line or option the fleet cannot act on. */
  | 'E_USAGE'
  /** The queue (Redis) cannot be reached or answered badly. */
  | 'E_QUEUE'
  /** An image took longer than the job's timeout (retried; recorded as failed on the last try). */
  | 'E_TIMEOUT'
  /** An image has no source the fleet can read (an EBS snapshot, a missing field). */
  | 'E_NO_SOURCE';

export class FleetError extends Error {
  readonly code: FleetErrorCode;

  constructor(code: FleetErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FleetError';
    this.code = code;
  }
}
