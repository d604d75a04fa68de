import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ImageError } from '@amitrans/block';
import { readBody, type ObjectHead, type RangeSource } from './source.js';
import { TransientError } from './retry.js';
import { displayName } from './url.js';
import { certificateError } from './tls.js';

export interface HttpSourceOptions {
  /** A response (headers or body bytes) silent this long is retried. Default 30 s. */
  readonly idleMs?: number;
}

/**
 * An HTTP(S) URL read with Range requests. HTTPS trusts the system's CAs plus
 * NODE_EXTRA_CA_CERTS, as every Node program does. The object is pinned by ETag
 * (If-Match), or by Last-Modified (If-Unmodified-Since) when the server gives no ETag.
 */
export class HttpSource implements RangeSource {
  readonly name: string;
  readonly #url: URL;
  readonly #idleMs: number;
  #version: { etag?: string; modified?: string } = {};

  constructor(url: URL, o: HttpSourceOptions = {}) {
    this.#url = url;
    this.name = displayName(url.toString());
    this.#idleMs = o.idleMs ?? 30_000;
  }

  async head(): Promise<ObjectHead> {
    const res = await this.#send('HEAD', {});
    res.resume();
    if (res.statusCode !== 200) throw this.#statusError(res);
    const length = Number(res.headers['content-length']);
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new ImageError('E_UNSUPPORTED', 'the server did not give the size (no Content-Length on HEAD)', { file: this.name });
    }
    if (length > 0 && res.headers['accept-ranges'] === 'none') {
      throw new ImageError('E_UNSUPPORTED', 'the server does not serve byte ranges (Accept-Ranges: none)', { file: this.name });
    }
    const etag = res.headers.etag;
    const modified = res.headers['last-modified'];
    // A weak ETag cannot be used with If-Match: fall back to the date.
    this.#version = etag && !etag.startsWith('W/') ? { etag } : modified ? { modified } : {};
    return { size: length, ...(this.#version.etag ?? this.#version.modified ? { version: this.#version.etag ?? this.#version.modified } : {}) };
  }

  async get(offset: number, into: Uint8Array, _version: string | undefined, progress: { received: number }): Promise<void> {
    const headers: Record<string, string> = { range: `bytes=${offset}-${offset + into.length - 1}` };
    if (this.#version.etag) headers['if-match'] = this.#version.etag;
    else if (this.#version.modified) headers['if-unmodified-since'] = this.#version.modified;
    const res = await this.#send('GET', headers);
    if (res.statusCode === 412) {
      res.resume();
      throw new ImageError('E_CHANGED', 'the object changed while it was being read (its ETag no longer matches)', { file: this.name, offset });
    }
    if (res.statusCode !== 206) {
      res.resume();
      if (res.statusCode === 200) throw new ImageError('E_UNSUPPORTED', 'the server ignored the byte range (answered 200, not 206)', { file: this.name, offset });
      throw this.#statusError(res);
    }
    const etag = res.headers.etag;
    if (this.#version.etag && etag && etag !== this.#version.etag) {
      res.resume();
      throw new ImageError('E_CHANGED', 'the object changed while it was being read (its ETag no longer matches)', { file: this.name, offset });
    }
    const start = /^bytes (\d+)-/.exec(res.headers['content-range'] ?? '');
    if (!start || Number(start[1]) !== offset) {
      res.resume();
      throw new ImageError('E_CORRUPT', `the server answered range ${res.headers['content-range'] ?? '(none)'} for byte ${offset}`, { file: this.name, offset });
    }
    await readBody(res, into, progress, this.#idleMs);
  }

  async close(): Promise<void> {}

  #send(method: string, headers: Record<string, string>): Promise<IncomingMessage> {
    const request = this.#url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(this.#url, { method, headers }, resolve);
      req.setTimeout(this.#idleMs, () => req.destroy(new TransientError(`no answer for ${this.#idleMs / 1000} s`)));
      req.on('error', (err) => reject(certificateError(err, this.name) ?? err));
      req.end();
    });
  }

  #statusError(res: IncomingMessage): Error {
    const status = res.statusCode ?? 0;
    const text = `HTTP ${status} ${res.statusMessage ?? ''}`.trim();
    if (status >= 500 || status === 429) return new TransientError(text);
    if (status === 404) return new ImageError('E_IO', `not found (${text})`, { file: this.name });
    return new ImageError('E_IO', text, { file: this.name });
  }
}
