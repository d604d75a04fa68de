import { ImageError } from '@amitrans/block';
import { redact } from './url.js';

export interface RetryOptions {
  /** Tries in all, the first included. Default 6. */
  readonly attempts?: number;
  /** The first back-off; each later one doubles, capped at `maxDelayMs`. Default 200 ms. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly signal?: AbortSignal | undefined;
}

/**
 * A failure worth another try: a 5xx, throttling (429, SlowDown), a connection reset or
 * refused, a stalled or broken body. Anything else (403, 404, 412) is the answer.
 */
export class TransientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientError';
  }
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH',
  'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE',
]);
const TRANSIENT_NAMES = new Set([
  'SlowDown', 'ThrottlingException', 'Throttling', 'RequestTimeout', 'RequestTimeoutException', 'InternalError',
  'ServiceUnavailable', 'TimeoutError', 'RequestTimeTooSkewed',
]);

/** Whether `err` (ours, Node's or the AWS SDK's) is worth retrying. */
export function isTransient(err: unknown): boolean {
  if (err instanceof TransientError) return true;
  if (err instanceof ImageError) return false;
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; name?: unknown; message?: unknown; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
  if (typeof e.name === 'string' && TRANSIENT_NAMES.has(e.name)) return true;
  if (e.$retryable) return true;
  // The SDK's own wording for a socket closed before the response ended.
  return typeof e.message === 'string' && /socket hang up|aborted|premature close|terminated/i.test(e.message);
}

/** How long to wait before try `n` (1-based retries): full jitter over an exponential cap. */
export function backoff(n: number, o: RetryOptions = {}): number {
  const base = o.baseDelayMs ?? 200;
  const cap = Math.min(o.maxDelayMs ?? 10_000, base * 2 ** (n - 1));
  return Math.round(cap / 2 + Math.random() * (cap / 2));
}

/**
 * Run `fn` until it succeeds, a non-transient error, or the budget is spent; then the
 * last error becomes an E_IO ImageError naming `what` (a URL shown without secrets).
 */
export async function withRetry<T>(what: string, fn: (attempt: number) => Promise<T>, o: RetryOptions & { progressed?: () => boolean } = {}): Promise<T> {
  const attempts = Math.max(1, o.attempts ?? 6);
  for (let attempt = 1; ; attempt++) {
    o.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      if (!isTransient(err)) throw err;
      // A body that broke after bringing bytes made progress: the budget starts again, so
      // a long download on a flaky link finishes, while a dead server still fails fast.
      if (o.progressed?.()) attempt = 0;
      if (attempt >= attempts) {
        throw new ImageError('E_IO', `${describeError(err)} (gave up after ${attempts} tries)`, { file: what, cause: err });
      }
      await sleep(backoff(attempt, o), o.signal);
    }
  }
}

/** One line about a network or SDK error, without anything secret. */
export function describeError(err: unknown): string {
  if (typeof err !== 'object' || err === null) return redact(String(err));
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const named = e.name && e.name !== 'Error' && e.name !== 'TransientError' ? e.name : undefined;
  const label = [e.code ?? named, status ? `HTTP ${status}` : undefined].filter(Boolean).join(', ');
  const msg = e.message && e.message !== 'UnknownError' && e.message !== e.name ? e.message : '';
  return redact([label, msg].filter(Boolean).join(': ') || 'request failed');
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
