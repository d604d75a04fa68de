import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageError, isImageError } from '@amitrans/block';
import { boto3, startFaultProxy, startHttpFiles, startS3, tmpDir, type Fault, type S3Server, type TmpDir } from '@amitrans/testkit';
import { firstPartSize, MAX_PARTS, openRemote, partSizeFor, RemoteDevice, S3Sink, S3Source, s3Client } from '../src/index.js';

const MIB = 1024 * 1024;
let s3: S3Server;
let dir: TmpDir;
let content: Buffer;
const saved = { ...process.env };

/** 12 MiB of random data with a few MiB of zeros in the middle. */
function makeContent(): Buffer {
  const b = randomBytes(12 * MIB);
  b.fill(0, 4 * MIB, 7 * MIB);
  return b;
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

async function readAll(dev: RemoteDevice, piece = 1 * MIB + 4097): Promise<Buffer> {
  const out = Buffer.alloc(dev.size);
  for (let at = 0; at < dev.size; at += piece) {
    const n = Math.min(piece, dev.size - at);
    await dev.read(out.subarray(at, at + n), at);
  }
  return out;
}

beforeAll(async () => {
  // boto3 is the oracle: its absence is a failure, never a skip (setup-test-env installs it).
  s3 = await startS3();
  Object.assign(process.env, s3.env);
  dir = await tmpDir();
  content = makeContent();
  await writeFile(dir.file('obj.bin'), content);
  await boto3.put(s3, 'dir/obj.bin', dir.file('obj.bin'));
}, 60_000);

afterAll(async () => {
  process.env = saved;
  await s3?.close();
  await dir?.remove();
});

describe('RemoteDevice over S3', () => {
  it('reads an object put by boto3 byte for byte, in order and at random', async () => {
    const dev = await openRemote('s3://bkt/dir/obj.bin');
    expect(dev.size).toBe(content.length);
    expect(sha(await readAll(dev))).toBe(sha(content));
    for (let i = 0; i < 200; i++) {
      const at = Math.floor(Math.random() * (content.length - 9000));
      const buf = new Uint8Array(1 + Math.floor(Math.random() * 9000));
      await dev.read(buf, at);
      expect(Buffer.from(buf).equals(content.subarray(at, at + buf.length))).toBe(true);
    }
    await dev.close();
  });

  it('serves scattered small reads from cached blocks: one request per block', async () => {
    const dev = await openRemote('s3://bkt/dir/obj.bin', { blockSize: 64 * 1024 });
    const buf = new Uint8Array(512);
    for (let round = 0; round < 3; round++) {
      for (const at of [0, 5 * MIB + 100, 9 * MIB, 1024]) await dev.read(buf, at);
    }
    expect(dev.requests).toBe(3);
    expect(dev.bytesFetched).toBe(3 * 64 * 1024);
    await dev.close();
  });

  it('drops behind a streaming reader: what it passed is not kept, what a lookup read is', async () => {
    const dev = await openRemote('s3://bkt/dir/obj.bin', { blockSize: 64 * 1024 });
    const small = new Uint8Array(512);
    expect(sha(await readAll(dev, 2 * MIB))).toBe(sha(content));
    const after = dev.requests;
    // A looked-up block is fetched once and then cached; the first block, streamed past, is fetched again.
    await dev.read(small, 9 * MIB + 100);
    await dev.read(small, 9 * MIB);
    expect(dev.requests).toBe(after + 1);
    await dev.read(small, 0);
    expect(dev.requests).toBe(after + 2);
    // A large read takes the cached block and fetches only the gaps around it, into its own buffer.
    const big = new Uint8Array(2 * MIB);
    await dev.read(big, 8 * MIB + 512);
    expect(Buffer.from(big).equals(content.subarray(8 * MIB + 512, 10 * MIB + 512))).toBe(true);
    expect(dev.requests).toBe(after + 4);
    await dev.close();
  });

  it('names a missing object and bucket with a typed error', async () => {
    await expect(openRemote('s3://bkt/nothing-here')).rejects.toMatchObject({ code: 'E_IO', file: 's3://bkt/nothing-here' });
    await expect(openRemote('s3://bkt')).rejects.toMatchObject({ code: 'E_USAGE' });
  });
});

describe('faults between client and server', () => {
  async function throughProxy(plan: (n: number, method: string) => Fault, o: { attempts?: number; idleMs?: number } = {}) {
    const proxy = await startFaultProxy(s3.endpoint, (n, req) => plan(n, req.method ?? ''));
    const dev = await openRemote('s3://bkt/dir/obj.bin', { endpoint: proxy.endpoint, baseDelayMs: 10, ...o });
    return { proxy, dev };
  }

  it('resumes bodies cut mid-way, rides out 503 SlowDown and stalls, and returns the same bytes', async () => {
    let gets = 0;
    const { proxy, dev } = await throughProxy((n, method) => {
      if (method !== 'GET') return { kind: 'pass' };
      gets++;
      if (gets <= 3) return { kind: 'slowdown' };
      if (gets <= 8) return { kind: 'drop', after: 100_000 + gets };
      if (gets === 9) return { kind: 'stall', after: 5000 };
      return { kind: 'pass' };
    }, { idleMs: 1000 });
    expect(sha(await readAll(dev, 3 * MIB))).toBe(sha(content));
    // The cut bodies were resumed, not refetched: barely more than the object crossed the wire.
    expect(dev.bytesFetched).toBe(content.length);
    expect(gets).toBeGreaterThan(9);
    await dev.close();
    await proxy.close();
  });

  it('past the retry budget: E_IO naming the URL, without credentials', async () => {
    const { proxy, dev } = await throughProxy((n, method) => (method === 'GET' ? { kind: 'slowdown' } : { kind: 'pass' }), { attempts: 3 });
    const err = await dev.read(new Uint8Array(10), 0).catch((e: unknown) => e);
    expect(isImageError(err, 'E_IO')).toBe(true);
    expect((err as ImageError).message).toContain('s3://bkt/dir/obj.bin');
    expect((err as ImageError).message).toContain('gave up after 3 tries');
    expect((err as ImageError).message).not.toContain('S3RVER');
    expect(proxy.log.filter((l) => l.startsWith('GET')).length).toBe(3);
    await dev.close();
    await proxy.close();
  });
});

describe('an object that changes while it is read', () => {
  it('S3: E_CHANGED, never bytes of two versions', async () => {
    await boto3.put(s3, 'changing.bin', dir.file('obj.bin'));
    const dev = await openRemote('s3://bkt/changing.bin', { blockSize: 64 * 1024 });
    await dev.read(new Uint8Array(1000), 0);
    await writeFile(dir.file('other.bin'), randomBytes(content.length));
    await boto3.put(s3, 'changing.bin', dir.file('other.bin'));
    const err = await dev.read(new Uint8Array(1000), 8 * MIB).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_CHANGED', file: 's3://bkt/changing.bin' });
    await dev.close();
  });

  it('HTTP: If-Match answered 412 gives E_CHANGED', async () => {
    await writeFile(dir.file('web.bin'), content);
    const web = await startHttpFiles({ 'web.bin': dir.file('web.bin') });
    const dev = await openRemote(web.url('web.bin'), { blockSize: 64 * 1024 });
    const buf = new Uint8Array(4096);
    await dev.read(buf, 3 * MIB);
    expect(Buffer.from(buf).equals(content.subarray(3 * MIB, 3 * MIB + 4096))).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(dir.file('web.bin'), randomBytes(content.length));
    await expect(dev.read(buf, 9 * MIB)).rejects.toMatchObject({ code: 'E_CHANGED' });
    await dev.close();
    await web.close();
  });
});

describe('RemoteDevice over HTTP', () => {
  it('reads a file served with Range byte for byte; credentials in the URL are never shown', async () => {
    const web = await startHttpFiles({ 'obj.bin': dir.file('obj.bin') });
    const url = web.url('obj.bin').replace('http://', 'http://user:hunter2@') + '?X-Amz-Signature=deadbeef';
    const dev = await openRemote(url);
    expect(dev.name).not.toContain('hunter2');
    expect(dev.name).not.toContain('deadbeef');
    expect(sha(await readAll(dev))).toBe(sha(content));
    await dev.close();
    await web.close();
  });
});

describe('S3Sink', () => {
  it('sizes parts so any output fits in 10,000 parts', () => {
    for (const size of [0, 1, 80 * MIB, 100 * 1024 * MIB, 5 * 1024 * 1024 * MIB]) {
      const first = firstPartSize(size);
      let total = 0;
      let n = 0;
      while (total < size) total += partSizeFor(++n, first);
      expect(n).toBeLessThanOrEqual(MAX_PARTS);
      expect(first).toBeGreaterThanOrEqual(5 * MIB);
    }
  });

  it('uploads in parts; boto3 reads back the same bytes', async () => {
    const sink = new S3Sink('bkt', 'up/multi.bin', { expectedSize: content.length * 2 });
    let at = 0;
    while (at < content.length) {
      const n = Math.min(content.length - at, 1 + Math.floor(Math.random() * 3 * MIB));
      await sink.write(content.subarray(at, at + n));
      at += n;
    }
    await sink.skip(MIB);
    expect(await boto3.exists(s3, 'up/multi.bin')).toBe(false);
    await sink.commit();
    expect(sink.parts).toBe(2);
    const expected = Buffer.concat([content, Buffer.alloc(MIB)]);
    expect(await boto3.sha256(s3, 'up/multi.bin')).toEqual({ sha256: sha(expected), size: expected.length });
  });

  it('a small output is one PutObject', async () => {
    const sink = new S3Sink('bkt', 'up/small.bin');
    await sink.write(content.subarray(0, 1000));
    await sink.commit();
    expect(sink.parts).toBe(0);
    expect(await boto3.sha256(s3, 'up/small.bin')).toEqual({ sha256: sha(content.subarray(0, 1000)), size: 1000 });
  });

  it('abort leaves no object, asks the server to abort the upload, and warns when it cannot (s3rver: 405)', async () => {
    const proxy = await startFaultProxy(s3.endpoint);
    const warnings: string[] = [];
    const sink = new S3Sink('bkt', 'up/aborted.bin', { endpoint: proxy.endpoint, warn: (m) => warnings.push(m) });
    await sink.write(content);
    await sink.abort();
    expect(await boto3.exists(s3, 'up/aborted.bin')).toBe(false);
    expect(proxy.log.some((l) => l.startsWith('DELETE /bkt/up/aborted.bin?uploadId='))).toBe(true);
    expect(warnings.join('\n')).toMatch(/could not abort multipart upload .*405/);
    expect(warnings.join('\n')).not.toContain('S3RVER');
    await proxy.close();
  });

  it('a failed part (past the budget) fails the upload and leaves no object', async () => {
    const proxy = await startFaultProxy(s3.endpoint, (n, req) => (req.method === 'PUT' && req.url?.includes('partNumber=2') ? { kind: 'slowdown' } : { kind: 'pass' }));
    const sink = new S3Sink('bkt', 'up/failed.bin', { endpoint: proxy.endpoint, attempts: 2, baseDelayMs: 10, warn: () => undefined });
    const err = await (async () => {
      await sink.write(content);
      await sink.write(content);
      await sink.commit();
    })().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_IO', file: 's3://bkt/up/failed.bin' });
    expect(await boto3.exists(s3, 'up/failed.bin')).toBe(false);
    await proxy.close();
  });

  it('writes through a client built from the environment (AWS_ENDPOINT_URL, path style)', async () => {
    const client = await s3Client();
    const src = new S3Source('bkt', 'up/small.bin', { client });
    expect((await src.head()).size).toBe(1000);
    client.destroy();
  });
});
