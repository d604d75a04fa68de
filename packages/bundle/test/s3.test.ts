import { randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BaseDevice, FileDevice, FileSink, ImageError } from '@amitrans/block';
import { boto3, requireTools, run, startFaultProxy, startS3, tmpDir, writeSparseImage, type FaultProxy, type S3Server, type TmpDir } from '@amitrans/testkit';
import { S3Destination, S3PartSource, SinkTarget, bundleDevice, readManifestS3, unbundle } from '../src/index.js';
import { makeIdentity, type Identity } from './helpers.js';

let tmp: TmpDir;
let s3: S3Server;
let proxy: FaultProxy;
let user: Identity;
let cloud: Identity;
const acls: string[] = [];
const saved = { ...process.env };
const SIZE = 6 * 1024 * 1024;

beforeAll(async () => {
  tmp = await tmpDir('amitrans-bundle-s3-');
  s3 = await startS3('existing');
  // Every request goes through a proxy that records its method, path and canned ACL.
  proxy = await startFaultProxy(s3.endpoint, (_n, req) => {
    if (req.method === 'PUT') acls.push(`${(req.url ?? '').replace(/\?.*$/, '')} ${String(req.headers['x-amz-acl'] ?? '')}`);
    return { kind: 'pass' };
  });
  Object.assign(process.env, s3.env, { AWS_ENDPOINT_URL: proxy.endpoint });
  [user, cloud] = await Promise.all([makeIdentity(tmp.path, 'user'), makeIdentity(tmp.path, 'cloud')]);
  await writeSparseImage(tmp.file('disk.img'), SIZE, 33);
}, 60_000);
afterAll(async () => {
  process.env = saved;
  await proxy?.close();
  await s3?.close();
  await tmp?.remove();
});

/** A device that fails part-way through, as a dying disk would. */
class FailingDevice extends BaseDevice {
  constructor(size: number, private readonly failAt: number) {
    super(size, false, 'failing device');
  }
  protected async _read(buffer: Uint8Array, position: number): Promise<void> {
    if (position + buffer.length > this.failAt) throw new ImageError('E_IO', 'injected read error', { offset: position });
    randomFillSync(buffer);
  }
}

describe('bundle to and from S3 (s3rver on 127.0.0.1)', () => {
  it('uploads parts first and the manifest last with aws-exec-read, creating the bucket; download + unbundle is identical', async (ctx) => {
    requireTools(ctx, 'python3', 'cmp');
    const dev = await FileDevice.open(tmp.file('disk.img'));
    const dest = await S3Destination.create('s3://fresh-bucket/images/deb');
    const b = await bundleDevice(dev, dest, {
      prefix: 'disk.img', architecture: 'x86_64', user: '1', ec2Cert: cloud.certObject, userCert: user.certObject, privateKey: user.keyObject, partSize: 1024 * 1024,
    });
    await dev.close();
    expect(b.manifest).toBe('s3://fresh-bucket/images/deb/disk.img.manifest.xml');
    // The PUTs, in the order they started: the bucket, every part, then the manifest.
    const puts = acls.filter((l) => l.startsWith('/fresh-bucket'));
    expect(puts[0]).toMatch(/^\/fresh-bucket\/? /);
    const objects = puts.slice(1);
    expect(objects[objects.length - 1]).toBe('/fresh-bucket/images/deb/disk.img.manifest.xml aws-exec-read');
    expect(objects.slice(0, -1).sort()).toEqual(b.parts.map((p) => `/fresh-bucket/images/deb/${p.filename} aws-exec-read`).sort());
    // boto3, the independent client, sees the same objects and bytes.
    const keys = JSON.parse((await run('python3', ['-c', `import boto3,json,sys
s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='S3RVER', aws_secret_access_key='S3RVER', region_name='us-east-1')
print(json.dumps(sorted(o['Key'] for o in s3.list_objects_v2(Bucket='fresh-bucket')['Contents'])))`, s3.endpoint])).stdout) as string[];
    expect(keys).toEqual([...b.parts.map((p) => `images/deb/${p.filename}`), 'images/deb/disk.img.manifest.xml'].sort());
    // Download and unbundle straight from S3.
    const parsed = await readManifestS3(b.manifest);
    const sink = await FileSink.create(tmp.file('back.img'));
    const target = new SinkTarget(sink);
    const r = await unbundle(parsed, new S3PartSource(b.manifest), target, { privateKey: user.keyObject, cert: user.certObject });
    await target.finish();
    await sink.commit();
    expect([r.signature, r.parts, r.digest]).toEqual(['verified', b.parts.length, b.digest]);
    await run('cmp', [tmp.file('back.img'), tmp.file('disk.img')]);
  });

  it('a failure part-way deletes the parts already uploaded: no manifest, no part', async (ctx) => {
    requireTools(ctx, 'python3');
    const dest = await S3Destination.create('s3://existing/broken');
    const dev = new FailingDevice(16 * 1024 * 1024, 12 * 1024 * 1024);
    await expect(bundleDevice(dev, dest, { prefix: 'x', architecture: 'x86_64', user: '1', ec2Cert: cloud.certObject, partSize: 1024 * 1024 })).rejects.toMatchObject({ code: 'E_IO' });
    expect(acls.some((l) => l.startsWith('/existing/broken/x.part.'))).toBe(true);
    expect(await boto3.keys(s3)).toEqual([]);
  });

  it('a missing part in S3 is a typed error naming its URL', async () => {
    const dev = await FileDevice.open(tmp.file('disk.img'));
    const b = await bundleDevice(dev, await S3Destination.create('s3://existing/gap'), { prefix: 'g', architecture: 'x86_64', user: '1', ec2Cert: cloud.certObject, partSize: 1024 * 1024 });
    await dev.close();
    await run('python3', ['-c', `import boto3,sys
boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='S3RVER', aws_secret_access_key='S3RVER', region_name='us-east-1').delete_object(Bucket='existing', Key='gap/g.part.01')`, s3.endpoint]);
    const parsed = await readManifestS3(b.manifest);
    const err = await unbundle(parsed, new S3PartSource(b.manifest), { begin: async () => undefined, write: async () => undefined }, { privateKey: cloud.keyObject }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_TRUNCATED', file: 's3://existing/gap/g.part.01' });
    expect(readFileSync(tmp.file('disk.img')).length).toBe(SIZE);
  });
});
