/**
 * Real servers for remote-image tests, each on a free 127.0.0.1 port: an S3 server
 * (s3rver), an HTTP(S) server with Range and ETags, a fault-injecting HTTP proxy, and
 * boto3 as the independent S3 client that checks what landed.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer as createHttpServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './index.js';

export interface S3Server {
  endpoint: string;
  bucket: string;
  /** The environment a client needs to reach it (credentials are s3rver's fixed test pair). */
  env: Record<string, string>;
  directory: string;
  close(): Promise<void>;
}

/**
 * Start s3rver with one bucket on a free 127.0.0.1 port, in a child process: the tests'
 * clients (often the CLI, in-process) then do not share one thread with the server.
 */
export async function startS3(bucket = 'bkt'): Promise<S3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'amitrans-s3rver-'));
  const entry = pathToFileURL(createRequire(import.meta.url).resolve('s3rver')).href;
  const script = `const { default: S3rver } = await import(${JSON.stringify(entry)});
const s = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: process.argv[1], configureBuckets: [{ name: ${JSON.stringify(bucket)} }] });
const a = await s.run();
process.stdout.write(a.port + '\\n');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, directory], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.on('exit', (code) => reject(new Error(`s3rver exited (${code}) before listening`)));
  });
  // A test run that dies does not leave the server behind.
  const stop = (): void => void child.kill('SIGTERM');
  process.once('exit', stop);
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    directory,
    env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: endpoint },
    close: async () => {
      process.off('exit', stop);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      await rm(directory, { recursive: true, force: true });
    },
  };
}

const BOTO3 = `
import sys, json, hashlib, boto3
from botocore.config import Config
op, endpoint, bucket = sys.argv[1], sys.argv[2], sys.argv[3]
s3 = boto3.client('s3', endpoint_url=endpoint, aws_access_key_id='S3RVER', aws_secret_access_key='S3RVER',
                  region_name='us-east-1', config=Config(s3={'addressing_style': 'path'}, retries={'max_attempts': 1},
                  request_checksum_calculation='when_required', response_checksum_validation='when_required'))
if op == 'put':
    s3.upload_file(sys.argv[5], bucket, sys.argv[4])
elif op == 'get':
    s3.download_file(bucket, sys.argv[4], sys.argv[5])
elif op == 'sha256':
    h = hashlib.sha256(); n = 0
    body = s3.get_object(Bucket=bucket, Key=sys.argv[4])['Body']
    for chunk in iter(lambda: body.read(1 << 20), b''):
        h.update(chunk); n += len(chunk)
    print(json.dumps({'sha256': h.hexdigest(), 'size': n}))
elif op == 'exists':
    try:
        s3.head_object(Bucket=bucket, Key=sys.argv[4]); print('yes')
    except s3.exceptions.ClientError as e:
        print('no' if e.response['Error']['Code'] in ('404', 'NoSuchKey', 'NotFound') else 'error ' + str(e))
elif op == 'keys':
    print(json.dumps([o['Key'] for o in s3.list_objects_v2(Bucket=bucket).get('Contents', [])]))
`;

/** boto3, the independent client: put a file, download an object, hash one, ask if it exists. */
export const boto3 = {
  put: (s3: S3Server, key: string, file: string) => run('python3', ['-c', BOTO3, 'put', s3.endpoint, s3.bucket, key, file]),
  get: (s3: S3Server, key: string, file: string) => run('python3', ['-c', BOTO3, 'get', s3.endpoint, s3.bucket, key, file]),
  sha256: async (s3: S3Server, key: string): Promise<{ sha256: string; size: number }> =>
    JSON.parse((await run('python3', ['-c', BOTO3, 'sha256', s3.endpoint, s3.bucket, key])).stdout) as { sha256: string; size: number },
  exists: async (s3: S3Server, key: string): Promise<boolean> => {
    const out = (await run('python3', ['-c', BOTO3, 'exists', s3.endpoint, s3.bucket, key])).stdout.trim();
    if (out !== 'yes' && out !== 'no') throw new Error(`boto3 head_object: ${out}`);
    return out === 'yes';
  },
  keys: async (s3: S3Server): Promise<string[]> => JSON.parse((await run('python3', ['-c', BOTO3, 'keys', s3.endpoint, s3.bucket])).stdout) as string[],
};

export interface HttpFileServer {
  url(name: string): string;
  /** Bytes of response bodies sent so far. */
  bytesSent: number;
  requests: number;
  close(): Promise<void>;
}

/**
 * Serve files by name with HEAD, single byte ranges (206 + Content-Range), a strong ETag
 * from size and mtime, and If-Match (412 when the file changed). HTTPS when given a key
 * and certificate.
 */
export async function startHttpFiles(files: Record<string, string>, tls?: { key: string; cert: string }): Promise<HttpFileServer> {
  const state = { bytesSent: 0, requests: 0 };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    state.requests++;
    void serveFile(files, req, res, state).catch(() => res.destroy());
  };
  const server: Server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const scheme = tls ? 'https' : 'http';
  return {
    url: (name) => `${scheme}://127.0.0.1:${port}/${name}`,
    get bytesSent() {
      return state.bytesSent;
    },
    get requests() {
      return state.requests;
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

async function serveFile(files: Record<string, string>, req: IncomingMessage, res: ServerResponse, state: { bytesSent: number }): Promise<void> {
  const path = files[decodeURIComponent((req.url ?? '/').slice(1).split('?')[0]!)];
  const st = path ? await stat(path).catch(() => undefined) : undefined;
  if (!path || !st) {
    res.writeHead(404).end();
    return;
  }
  const etag = `"${createHash('md5').update(`${st.size}-${st.mtimeMs}`).digest('hex')}"`;
  const ifMatch = req.headers['if-match'];
  if (ifMatch && ifMatch !== etag) {
    res.writeHead(412).end();
    return;
  }
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  const start = m ? Number(m[1]) : 0;
  const end = m && m[2] ? Math.min(Number(m[2]), st.size - 1) : st.size - 1;
  const headers = { etag, 'accept-ranges': 'bytes', 'content-length': String(Math.max(0, end - start + 1)) };
  if (req.method === 'HEAD') {
    res.writeHead(200, { ...headers, 'content-length': String(st.size) }).end();
    return;
  }
  if (m && start >= st.size) {
    res.writeHead(416, { 'content-range': `bytes */${st.size}` }).end();
    return;
  }
  res.writeHead(m ? 206 : 200, m ? { ...headers, 'content-range': `bytes ${start}-${end}/${st.size}` } : headers);
  const stream = createReadStream(path, { start, end });
  stream.on('data', (c) => (state.bytesSent += (c as Buffer).length));
  stream.pipe(res);
}

/** What the proxy does to the request with this number (1-based). */
export type Fault =
  | { kind: 'pass' }
  /** Answer 503 SlowDown without forwarding. */
  | { kind: 'slowdown' }
  /** Forward, then cut the connection after `after` bytes of the response body. */
  | { kind: 'drop'; after: number }
  /** Forward headers and `after` bytes of body, then send nothing more. */
  | { kind: 'stall'; after: number }
  /** Hold the request until `until` settles, then forward it (change the object meanwhile). */
  | { kind: 'wait'; until: Promise<unknown> };

export interface FaultProxy {
  endpoint: string;
  /** Response body bytes passed to the client. */
  bytesSent: number;
  /** Requests seen, as "METHOD path?query". */
  log: string[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of a server (s3rver) that injects faults: `plan(n, req)` decides
 * what happens to the n-th request. Requests are forwarded with their own Host header, so
 * SigV4 signatures made for the proxy's address stay valid.
 */
export async function startFaultProxy(target: string, plan: (n: number, req: IncomingMessage) => Fault = () => ({ kind: 'pass' })): Promise<FaultProxy> {
  const t = new URL(target);
  const state = { bytesSent: 0, n: 0, log: [] as string[] };
  const server = createHttpServer((req, res) => {
    const fault = plan(++state.n, req);
    state.log.push(`${req.method} ${req.url}`);
    if (fault.kind === 'slowdown') {
      req.resume();
      res.writeHead(503, { 'content-type': 'application/xml' })
        .end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
      return;
    }
    if (fault.kind === 'wait') {
      req.pause();
      void fault.until.finally(() => forward(req, res, { kind: 'pass' }));
      return;
    }
    forward(req, res, fault);
  });
  const forward = (req: IncomingMessage, res: ServerResponse, fault: Fault): void => {
    const upstream = request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      let sent = 0;
      up.on('data', (chunk: Buffer) => {
        const limit = fault.kind === 'drop' || fault.kind === 'stall' ? fault.after : Infinity;
        const piece = chunk.subarray(0, Math.max(0, Math.min(chunk.length, limit - sent)));
        if (piece.length) {
          res.write(piece);
          sent += piece.length;
          state.bytesSent += piece.length;
        }
        if (sent >= limit) {
          up.destroy();
          if (fault.kind === 'drop') res.socket?.destroy();
        }
      });
      up.on('end', () => res.end());
    });
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
    req.resume();
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get bytesSent() {
      return state.bytesSent;
    },
    log: state.log,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
