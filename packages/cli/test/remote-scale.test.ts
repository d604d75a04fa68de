/**
 * A 2 GiB AMI in S3 (#15): inspection fetches its metadata and a few files, not the disk;
 * a translation fetches the filesystem's used blocks plus what inspection reads. Counted
 * at a proxy between amitrans and the S3 server (response body bytes).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { boto3, buildDebianAmi, requireTools, run, startFaultProxy, startS3, tmpDir, type S3Server, type TmpDir } from '@amitrans/testkit';
import { cliOk as ok } from './helpers.js';

const MIB = 1024 * 1024;
let dir: TmpDir;
let s3: S3Server;
const saved = { ...process.env };

beforeAll(async () => {
  dir = await tmpDir('amitrans-remote-scale-');
  s3 = await startS3();
  Object.assign(process.env, s3.env);
});
afterAll(async () => {
  process.env = saved;
  await s3?.close();
  await dir?.remove();
});


it('inspect of the 2 GiB AMI over S3 fetches under 32 MiB; translate fetches the used blocks plus inspection', async (ctx) => {
  requireTools(ctx, 'mkfs.ext3', 'depmod', 'cpio', 'dumpe2fs', 'python3');
  const ami = dir.file('ami-2g.img');
  await buildDebianAmi(ctx, ami, { size: '2G' });
  const head = (await run('dumpe2fs', ['-h', ami])).stdout;
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(head)![1]);
  const used = (field('Block count') - field('Free blocks')) * field('Block size');
  expect(field('Block count') * field('Block size')).toBe(2 * 1024 * MIB);
  await boto3.put(s3, 'ami-2g.img', ami);

  const counted = await startFaultProxy(s3.endpoint);
  const inspected = JSON.parse(await ok('inspect', '--json', 's3://bkt/ami-2g.img', '--endpoint-url', counted.endpoint)) as { report: { kernels: unknown[] } };
  expect(inspected.report.kernels.length).toBeGreaterThan(0);
  const inspectBytes = counted.bytesSent;
  expect(inspectBytes).toBeLessThan(32 * MIB);
  await counted.close();

  const counted2 = await startFaultProxy(s3.endpoint);
  await ok('translate', 's3://bkt/ami-2g.img', 's3://bkt/ami-2g.qcow2', '-t', 'kvm', '--endpoint-url', counted2.endpoint);
  const translateBytes = counted2.bytesSent;
  console.log(`2 GiB AMI over S3: inspect fetched ${(inspectBytes / MIB).toFixed(1)} MiB; translate fetched ${(translateBytes / MIB).toFixed(1)} MiB for ${(used / MIB).toFixed(1)} MiB used`);
  // 32 MiB of slack: read-ahead runs past the end of some runs of used blocks, and metadata
  // blocks evicted from the cache are fetched again (measured: about 20 MiB here).
  expect(translateBytes).toBeLessThan(used + inspectBytes + 32 * MIB);
  expect(await boto3.exists(s3, 'ami-2g.qcow2')).toBe(true);
  await counted2.close();
}, 600_000);
