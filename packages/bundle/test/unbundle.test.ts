import { copyFileSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDevice, FileSink, ImageError } from '@amitrans/block';
import { requireTools, run, tmpDir, writeSparseImage, type TmpDir } from '@amitrans/testkit';
import { DirectoryDestination, DirectorySource, SinkTarget, bundleDevice, readManifestFile, unbundle, type UnbundleOptions } from '../src/index.js';
import { makeIdentity, sh, type Identity } from './helpers.js';

let tmp: TmpDir;
let user: Identity;
let cloud: Identity;
let other: Identity;
const SIZE = 12 * 1024 * 1024 + 4096;

beforeAll(async () => {
  tmp = await tmpDir('amitrans-unbundle-');
  [user, cloud, other] = await Promise.all([makeIdentity(tmp.path, 'user'), makeIdentity(tmp.path, 'cloud'), makeIdentity(tmp.path, 'other')]);
  await writeSparseImage(tmp.file('disk.img'), SIZE, 5);
});
afterAll(async () => {
  await tmp.remove();
});

/**
 * A bundle made without amitrans: GNU tar (optionally -S: old-GNU sparse), gzip, openssl
 * enc, split, the key wrapped and the manifest signed by openssl, the manifest written
 * by python3 the way ec2-ami-tools lays it out.
 */
async function independentBundle(dir: string, sparse: boolean): Promise<string> {
  const K = '0123456789abcdef0123456789abcdef';
  const IV = 'fedcba9876543210fedcba9876543210';
  await sh(`rm -rf ${dir} && mkdir ${dir} && tar --format=gnu ${sparse ? '-S' : ''} -cf ${dir}/t.tar disk.img && sha1sum ${dir}/t.tar | cut -c1-40 > ${dir}/t.sha1 &&
    gzip -9 -c ${dir}/t.tar | openssl enc -e -aes-128-cbc -K ${K} -iv ${IV} > ${dir}/t.enc && rm ${dir}/t.tar &&
    split -b 1000000 -d -a 1 ${dir}/t.enc ${dir}/disk.img.part. && rm ${dir}/t.enc`, tmp.path);
  const script = `
import os, subprocess, sys, hashlib
d, user_pub, cloud_pub, user_key = sys.argv[1:5]
def wrap(text, pub):
    return subprocess.run(['openssl', 'pkeyutl', '-encrypt', '-pubin', '-inkey', pub], input=text.encode(), capture_output=True, check=True).stdout.hex()
parts = sorted(p for p in os.listdir(d) if '.part.' in p)
digest = open(os.path.join(d, 't.sha1')).read().strip()
mc = '<machine_configuration><architecture>i386</architecture><kernel_id>aki-825ea7eb</kernel_id></machine_configuration>'
image = ('<image><name>disk.img</name><user>123456789012</user><type>machine</type>'
  '<digest algorithm="SHA1">%s</digest><size>%d</size><bundled_size>%d</bundled_size>'
  '<ec2_encrypted_key algorithm="AES-128-CBC">%s</ec2_encrypted_key><user_encrypted_key algorithm="AES-128-CBC">%s</user_encrypted_key>'
  '<ec2_encrypted_iv>%s</ec2_encrypted_iv><user_encrypted_iv>%s</user_encrypted_iv><parts count="%d">%s</parts></image>') % (
  digest, ${SIZE}, sum(os.path.getsize(os.path.join(d, p)) for p in parts),
  wrap('${K}', cloud_pub), wrap('${K}', user_pub), wrap('${IV}', cloud_pub), wrap('${IV}', user_pub), len(parts),
  ''.join('<part index="%d"><filename>%s</filename><digest algorithm="SHA1">%s</digest></part>' % (i, p, hashlib.sha1(open(os.path.join(d, p), 'rb').read()).hexdigest()) for i, p in enumerate(parts)))
sig = subprocess.run(['openssl', 'dgst', '-sha1', '-sign', user_key], input=(mc + image).encode(), capture_output=True, check=True).stdout.hex()
open(os.path.join(d, 'disk.img.manifest.xml'), 'w').write('<?xml version="1.0" ?>\\n<manifest>\\n<version>2007-10-10</version>\\n<bundler><name>ec2-ami-tools</name><version>1.5</version><release>3</release></bundler>\\n' + mc + image + '\\n<signature>' + sig + '</signature>\\n</manifest>\\n')
`;
  await run('python3', ['-c', script, tmp.file(dir), user.pub, cloud.pub, user.key]);
  return tmp.file(`${dir}/disk.img.manifest.xml`);
}

async function unbundleTo(manifest: string, out: string, options: UnbundleOptions): Promise<ReturnType<typeof unbundle>> {
  const parsed = await readManifestFile(manifest);
  const sink = await FileSink.create(out);
  try {
    const target = new SinkTarget(sink);
    const r = await unbundle(parsed, DirectorySource.besideManifest(manifest), target, options);
    await target.finish();
    await sink.commit();
    return r;
  } catch (err) {
    await sink.abort();
    throw err;
  }
}

async function failure(p: Promise<unknown>): Promise<ImageError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ImageError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('unbundle', () => {
  it('bundles made by tar | gzip | openssl enc | split, regular and GNU sparse, unbundle to the identical image', async (ctx) => {
    requireTools(ctx, 'tar', 'gzip', 'openssl', 'split', 'python3', 'sha1sum');
    for (const sparse of [false, true]) {
      const manifest = await independentBundle(sparse ? 'sparse' : 'plain', sparse);
      for (const [key, from] of [[user.keyObject, 'user'], [cloud.keyObject, 'ec2']] as const) {
        const out = tmp.file(`out-${sparse}-${from}.img`);
        const r = await unbundleTo(manifest, out, { privateKey: key, cert: user.certObject });
        expect([r.keyFrom, r.signature, r.size]).toEqual([from, 'verified', SIZE]);
        await run('cmp', [out, tmp.file('disk.img')]);
      }
    }
  });

  it('round trip through our own bundle, with the signature checked', async () => {
    const dev = await FileDevice.open(tmp.file('disk.img'));
    const dest = await DirectoryDestination.create(tmp.file('own'), 'disk.img');
    const b = await bundleDevice(dev, dest, { prefix: 'disk.img', architecture: 'x86_64', user: '1', ec2Cert: cloud.certObject, userCert: user.certObject, privateKey: user.keyObject, partSize: 3_000_000 });
    await dev.close();
    const r = await unbundleTo(b.manifest, tmp.file('own.img'), { privateKey: user.keyObject, cert: user.certObject });
    expect([r.keyFrom, r.digest, r.parts]).toEqual(['user', b.digest, b.parts.length]);
    await run('cmp', [tmp.file('own.img'), tmp.file('disk.img')]);
  });

  it('a flipped byte, a wrong key, a bad signature, a truncated manifest, a missing part: typed errors naming it, nothing left', async (ctx) => {
    requireTools(ctx, 'tar', 'gzip', 'openssl', 'split', 'python3');
    const manifest = await independentBundle('bad', false);
    const out = tmp.file('bad.img');
    const opts = { privateKey: user.keyObject };
    // A flipped byte in part 1.
    const part = tmp.file('bad/disk.img.part.1');
    const saved = readFileSync(part);
    const flipped = Buffer.from(saved);
    flipped[5000] = flipped[5000]! ^ 0x40;
    writeFileSync(part, flipped);
    let e = await failure(unbundleTo(manifest, out, opts));
    expect([e.code, e.structure]).toEqual(['E_BAD_CHECKSUM', 'part disk.img.part.1 (bundle bytes 1000000-2000000)']);
    expect(e.offset).toBe(1000000);
    expect(e.message).toContain('bad/disk.img.part.1');
    writeFileSync(part, saved);
    // A key that is neither the user's nor the cloud's.
    e = await failure(unbundleTo(manifest, out, { privateKey: other.keyObject }));
    expect([e.code, e.structure]).toEqual(['E_BAD_KEY', 'manifest <user_encrypted_key>']);
    // A signature checked against the wrong certificate.
    e = await failure(unbundleTo(manifest, out, { privateKey: user.keyObject, cert: other.certObject }));
    expect([e.code, e.structure]).toEqual(['E_BAD_KEY', 'manifest <signature>']);
    // A truncated manifest.
    const text = readFileSync(manifest, 'utf8');
    writeFileSync(tmp.file('bad/short.manifest.xml'), text.slice(0, Math.floor(text.length * 0.7)));
    e = await failure(unbundleTo(tmp.file('bad/short.manifest.xml'), out, opts));
    expect(e.code).toBe('E_CORRUPT');
    expect(e.message).toMatch(/short\.manifest\.xml: manifest/);
    // A missing part.
    rmSync(tmp.file('bad/disk.img.part.2'));
    e = await failure(unbundleTo(manifest, out, opts));
    expect([e.code, e.structure]).toEqual(['E_TRUNCATED', 'part disk.img.part.2']);
    // Nothing was left at the output by any of them.
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp.path).filter((n) => n.includes('bad.img'))).toEqual([]);
  });

  it('a manifest whose digests match damaged parts still fails: the tar stream or gzip check names the stage', async (ctx) => {
    requireTools(ctx, 'tar', 'gzip', 'openssl', 'split', 'python3');
    const manifest = await independentBundle('forged', false);
    const part = tmp.file('forged/disk.img.part.0');
    const b = readFileSync(part);
    b[600_000] = b[600_000]! ^ 1;
    writeFileSync(part, b);
    const newSum = (await sh(`sha1sum ${part}`)).slice(0, 40);
    const text = readFileSync(manifest, 'utf8').replace(/(<filename>disk\.img\.part\.0<\/filename><digest algorithm="SHA1">)[0-9a-f]{40}/, `$1${newSum}`);
    copyFileSync(manifest, `${manifest}.orig`);
    writeFileSync(manifest, text);
    const e = await failure(unbundleTo(manifest, tmp.file('forged.img'), { privateKey: user.keyObject }));
    expect(['E_CORRUPT', 'E_BAD_CHECKSUM']).toContain(e.code);
    expect(e.message).toMatch(/gunzip|AES|tar|SHA-1/);
    expect(existsSync(tmp.file('forged.img'))).toBe(false);
  });
});
