import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng, requireTools, run, startS3, tmpDir, type TmpDir } from '@amitrans/testkit';
import { cli } from './helpers.js';

let tmp: TmpDir;

beforeAll(async () => {
  tmp = await tmpDir('amitrans-cli-bundle-');
  const id = (n: string): Promise<unknown> =>
    run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', tmp.file(`${n}.key`), '-out', tmp.file(`${n}.crt`), '-subj', `/CN=${n}`, '-days', '2']);
  await Promise.all([id('user'), id('cloud')]);
});
afterAll(async () => {
  await tmp.remove();
});

/** A bare ext4 root filesystem with an x86-64 /sbin/init and a deleted file whose blocks still hold data. */
async function extImage(path: string): Promise<void> {
  const root = tmp.file('root');
  mkdirSync(`${root}/sbin`, { recursive: true });
  copyFileSync('/bin/true', `${root}/sbin/init`);
  writeFileSync(`${root}/stale`, prng(1).bytes(3 * 1024 * 1024));
  writeFileSync(`${root}/kept`, prng(2).bytes(700 * 1024));
  await run('mkfs.ext4', ['-q', '-F', '-d', root, path, '48M']);
  await run('debugfs', ['-w', '-R', 'rm /stale', path]);
}

describe('amitrans bundle / unbundle', () => {
  it('an ext filesystem bundles with its free blocks as zeros: unbundled = zerofree\'d copy, e2fsck clean', async (ctx) => {
    requireTools(ctx, 'mkfs.ext4', 'debugfs', 'zerofree', 'e2fsck', 'openssl', 'cmp');
    const img = tmp.file('fs.img');
    await extImage(img);
    const before = readFileSync(img);
    const b = await cli('bundle', img, tmp.file('out'), '--user', '1234-5678-9012', '--ec2cert', tmp.file('cloud.crt'),
      '-c', tmp.file('user.crt'), '-k', tmp.file('user.key'), '--part-size', '256K', '--json');
    expect(b.stderr).toBe('');
    expect(b.code).toBe(0);
    const r = JSON.parse(b.stdout) as { manifest: string; parts: { filename: string }[]; architecture: string; freeBytesZeroed: number; signed: boolean; size: number };
    expect(r.architecture).toBe('x86_64'); // from /sbin/init
    expect(r.signed).toBe(true);
    expect(r.freeBytesZeroed).toBeGreaterThan(30 * 1024 * 1024);
    expect(readdirSync(tmp.file('out')).sort()).toEqual([...r.parts.map((p) => p.filename), 'fs.img.manifest.xml'].sort());
    expect(readFileSync(img).equals(before)).toBe(true); // the input is never written
    const u = await cli('unbundle', r.manifest, tmp.file('back.img'), '-k', tmp.file('user.key'), '-c', tmp.file('user.crt'));
    expect(u.stderr).toBe('');
    expect(u.code).toBe(0);
    expect(u.stdout).toMatch(/signature verified/);
    // zerofree rewrites the primary superblock (write time, kbytes written, checksum): outside
    // it our image equals the zerofree'd copy, and inside it equals the input.
    copyFileSync(img, tmp.file('zf.img'));
    await run('zerofree', [tmp.file('zf.img')]);
    const ours = readFileSync(tmp.file('back.img'));
    const zf = readFileSync(tmp.file('zf.img'));
    expect(ours.length).toBe(zf.length);
    expect(ours.subarray(0, 1024).equals(zf.subarray(0, 1024))).toBe(true);
    expect(ours.subarray(2048).equals(zf.subarray(2048))).toBe(true);
    expect(ours.subarray(1024, 2048).equals(before.subarray(1024, 2048))).toBe(true);
    await run('e2fsck', ['-fn', tmp.file('back.img')]);
    // The stale file's bytes are in the input but nowhere in the bundle's image.
    const stale = Buffer.from(prng(1).bytes(4096));
    expect(before.indexOf(stale)).toBeGreaterThan(0);
    expect(ours.indexOf(stale)).toBe(-1);
  });

  it('reads EC2_USER_ID, EC2_CERT, EC2_PRIVATE_KEY and EUCALYPTUS_CERT like euca2ools', async (ctx) => {
    requireTools(ctx, 'openssl');
    const img = tmp.file('raw.img');
    writeFileSync(img, prng(9).bytes(300_000));
    const saved = { ...process.env };
    Object.assign(process.env, { EC2_USER_ID: '9999-8888-7777', EC2_CERT: tmp.file('user.crt'), EC2_PRIVATE_KEY: tmp.file('user.key'), EUCALYPTUS_CERT: tmp.file('cloud.crt') });
    try {
      const b = await cli('bundle', img, tmp.file('env'), '--arch', 'i386', '--prefix', 'envimg', '--kernel', 'eki-00000001', '--ramdisk', 'eri-00000002', '-B', 'ami=sda1,root=/dev/sda1');
      expect(b.stderr).toBe('');
      expect(b.code).toBe(0);
      const xml = readFileSync(tmp.file('env/envimg.manifest.xml'), 'latin1');
      expect(xml).toContain('<user>999988887777</user>');
      expect(xml).toContain('<architecture>i386</architecture><block_device_mapping><mapping><virtual>ami</virtual><device>sda1</device></mapping>');
      expect(xml).toContain('<kernel_id>eki-00000001</kernel_id><ramdisk_id>eri-00000002</ramdisk_id>');
      expect(xml).not.toContain('UNSIGNED');
      expect(xml).not.toContain('<user_encrypted_key algorithm="AES-128-CBC"/>');
      const u = await cli('unbundle', tmp.file('env/envimg.manifest.xml'), tmp.file('env.img'));
      expect(u.code).toBe(0);
      expect(readFileSync(tmp.file('env.img')).equals(readFileSync(img))).toBe(true);
    } finally {
      process.env = saved;
    }
  });

  it('usage errors exit 2 and bad bundles exit 1, with nothing left behind', async (ctx) => {
    requireTools(ctx, 'openssl');
    const img = tmp.file('raw2.img');
    writeFileSync(img, prng(10).bytes(100_000));
    const noCloud = await cli('bundle', img, tmp.file('u1'), '--user', '1', '--arch', 'x86_64');
    expect(noCloud.code).toBe(2);
    expect(noCloud.stderr).toMatch(/--ec2cert/);
    const noArch = await cli('bundle', img, tmp.file('u2'), '--user', '1', '--ec2cert', tmp.file('cloud.crt'));
    expect(noArch.code).toBe(2);
    expect(noArch.stderr).toMatch(/--arch/);
    expect(existsSync(tmp.file('u2')) ? readdirSync(tmp.file('u2')) : []).toEqual([]);
    const kernelB = await cli('bundle', img, tmp.file('u3'), '--user', '1', '--arch', 'x86_64', '--ec2cert', tmp.file('cloud.crt'), '--kernel', 'true', '-B', 'ami=sda1');
    expect(kernelB.code).toBe(2);
    expect(readdirSync(tmp.file('u3'))).toEqual([]);
    // Without the user cert only the cloud's key opens the bundle.
    const ok = await cli('bundle', img, tmp.file('u4'), '--user', '1', '--arch', 'x86_64', '--ec2cert', tmp.file('cloud.crt'));
    expect(ok.code).toBe(0);
    const wrong = await cli('unbundle', tmp.file('u4/raw2.img.manifest.xml'), tmp.file('u4.img'), '-k', tmp.file('user.key'));
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/raw2\.img\.manifest\.xml: manifest <user_encrypted_key>: the private key opens neither/);
    expect(wrong.stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(tmp.path).filter((n) => n.includes('u4.img'))).toEqual([]);
    const onPart = await cli('unbundle', tmp.file('u4/raw2.img.manifest.xml'), tmp.file('u4/raw2.img.part.00'), '-k', tmp.file('cloud.key'));
    expect(onPart.code).toBe(1);
    expect(onPart.stderr).toMatch(/raw2\.img\.part\.00/);
    const right = await cli('unbundle', tmp.file('u4/raw2.img.manifest.xml'), tmp.file('u4.img'), '-k', tmp.file('cloud.key'), '--json');
    expect(right.code).toBe(0);
    expect(JSON.parse(right.stdout)).toMatchObject({ keyFrom: 'ec2', signature: 'not checked', size: 100_000 });
  });

  it('a manifest is an input: unbundle -O qcow2, convert and info read bundles with EC2_PRIVATE_KEY', async (ctx) => {
    requireTools(ctx, 'openssl', 'qemu-img', 'mkfs.ext4', 'debugfs');
    const img = tmp.file('in.img');
    await extImage(img);
    const b = await cli('bundle', img, tmp.file('inb'), '--user', '1', '--ec2cert', tmp.file('cloud.crt'), '-c', tmp.file('user.crt'), '-k', tmp.file('user.key'), '--json');
    expect(b.code).toBe(0);
    const manifest = (JSON.parse(b.stdout) as { manifest: string }).manifest;
    const raw = await cli('unbundle', manifest, tmp.file('in-back.img'), '-k', tmp.file('user.key'));
    expect(raw.code).toBe(0);
    const q = await cli('unbundle', manifest, tmp.file('in-back.qcow2'), '-O', 'qcow2', '-k', tmp.file('user.key'), '-c', tmp.file('user.crt'));
    expect(q.stderr).toBe('');
    expect(q.code).toBe(0);
    expect((await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', tmp.file('in-back.img'), tmp.file('in-back.qcow2')])).stdout).toMatch(/identical/);
    const noKey = await cli('info', manifest);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/bundle manifest: reading it needs the private key/);
    const saved = process.env.EC2_PRIVATE_KEY;
    process.env.EC2_PRIVATE_KEY = tmp.file('cloud.key');
    try {
      const info = await cli('info', manifest, '--json');
      expect(info.code).toBe(0);
      expect(JSON.parse(info.stdout)).toMatchObject({ virtualSize: 48 * 1024 * 1024, filesystem: { type: 'ext4' } });
      const c = await cli('convert', manifest, tmp.file('in-conv.vdi'));
      expect(c.code).toBe(0);
      expect((await run('qemu-img', ['compare', '-f', 'raw', '-F', 'vdi', tmp.file('in-back.img'), tmp.file('in-conv.vdi')])).stdout).toMatch(/identical/);
    } finally {
      if (saved === undefined) delete process.env.EC2_PRIVATE_KEY;
      else process.env.EC2_PRIVATE_KEY = saved;
    }
  });

  it('bundle to s3://bucket/prefix and unbundle, info and convert from s3://…manifest.xml through the CLI (s3rver)', async (ctx) => {
    requireTools(ctx, 'openssl', 'qemu-img');
    const s3 = await startS3('clibkt');
    const saved = { ...process.env };
    Object.assign(process.env, s3.env);
    try {
      const img = tmp.file('s3.img');
      writeFileSync(img, prng(12).bytes(2_500_000));
      const b = await cli('bundle', img, 's3://newbkt/emi/v1', '--user', '1', '--arch', 'x86_64', '--ec2cert', tmp.file('cloud.crt'),
        '-c', tmp.file('user.crt'), '-k', tmp.file('user.key'), '--part-size', '1M', '--acl', 'public-read', '--json');
      expect(b.stderr).toBe('');
      expect(b.code).toBe(0);
      const r = JSON.parse(b.stdout) as { manifest: string; parts: unknown[] };
      expect(r.manifest).toBe('s3://newbkt/emi/v1/s3.img.manifest.xml');
      expect(r.parts).toHaveLength(3);
      const u = await cli('unbundle', r.manifest, tmp.file('s3-back.img'), '-k', tmp.file('user.key'), '-c', tmp.file('user.crt'));
      expect(u.stderr).toBe('');
      expect(u.code).toBe(0);
      expect(readFileSync(tmp.file('s3-back.img')).equals(readFileSync(img))).toBe(true);
      // A manifest in S3 is an input too: info and convert read it (parts by ranged GETs).
      process.env.EC2_PRIVATE_KEY = tmp.file('user.key');
      const info = await cli('info', r.manifest, '--json');
      expect(info.stderr).toBe('');
      expect(JSON.parse(info.stdout)).toMatchObject({ virtualSize: 2_500_000 });
      const c = await cli('convert', r.manifest, tmp.file('s3-back.qcow2'));
      expect(c.stderr).toBe('');
      expect(c.code).toBe(0);
      await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', img, tmp.file('s3-back.qcow2')]);
      const q = await cli('unbundle', r.manifest, tmp.file('s3-back.vdi'), '-O', 'vdi', '-k', tmp.file('user.key'));
      expect(q.stderr).toBe('');
      expect(q.code).toBe(0);
      await run('qemu-img', ['compare', '-f', 'raw', '-F', 'vdi', img, tmp.file('s3-back.vdi')]);
      const aclLocal = await cli('bundle', img, tmp.file('acl'), '--user', '1', '--arch', 'x86_64', '--ec2cert', tmp.file('cloud.crt'), '--acl', 'public-read');
      expect(aclLocal.code).toBe(2);
      // The endpoint given as a flag rather than in the environment, as for convert and info.
      delete process.env.AWS_ENDPOINT_URL;
      const flagged = await cli('bundle', img, 's3://flagbkt/emi', '--user', '1', '--arch', 'x86_64', '--ec2cert', tmp.file('cloud.crt'),
        '-c', tmp.file('user.crt'), '--endpoint-url', s3.endpoint, '--json');
      expect(flagged.stderr).toBe('');
      const back = await cli('unbundle', 's3://flagbkt/emi/s3.img.manifest.xml', tmp.file('flag-back.img'), '-k', tmp.file('user.key'), '--endpoint-url', s3.endpoint);
      expect(back.stderr).toBe('');
      expect(readFileSync(tmp.file('flag-back.img')).equals(readFileSync(img))).toBe(true);
    } finally {
      process.env = saved;
      await s3.close();
    }
  });
});
