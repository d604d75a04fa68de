import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDevice } from '@amitrans/block';
import { requireTools, run, tmpDir, writeSparseImage, type TmpDir } from '@amitrans/testkit';
import { DirectoryDestination, bundleDevice, type BundleOptions, type BundleResult } from '../src/index.js';
import { elementText, makeIdentity, sh, type Identity } from './helpers.js';

let tmp: TmpDir;
let user: Identity;
let cloud: Identity;
const SIZE = 24 * 1024 * 1024;

beforeAll(async () => {
  tmp = await tmpDir('amitrans-bundle-');
  [user, cloud] = await Promise.all([makeIdentity(tmp.path, 'user'), makeIdentity(tmp.path, 'cloud')]);
  await writeSparseImage(tmp.file('disk.img'), SIZE, 21);
});
afterAll(async () => {
  await tmp.remove();
});

async function bundleTo(dir: string, options: Partial<BundleOptions> = {}): Promise<BundleResult> {
  const dev = await FileDevice.open(tmp.file('disk.img'));
  try {
    const dest = await DirectoryDestination.create(tmp.file(dir), 'disk.img');
    return await bundleDevice(dev, dest, {
      prefix: 'disk.img', architecture: 'x86_64', user: '1234-5678-9012', ec2Cert: cloud.certObject, ...options,
    });
  } finally {
    await dev.close();
  }
}

/** The openssl oracle's reading of a wrapped hex value. */
async function unwrapWithOpenssl(hex: string, key: string): Promise<string> {
  writeFileSync(tmp.file('wrapped.bin'), Buffer.from(hex, 'hex'));
  return (await run('openssl', ['pkeyutl', '-decrypt', '-inkey', key, '-in', tmp.file('wrapped.bin')])).stdout;
}

describe('bundle, checked by openssl, gzip, tar and sha1sum', () => {
  it('keys unwrap to 32 hex digits, parts decrypt to the tar stream, the member is the image, digests and signature hold', async (ctx) => {
    requireTools(ctx, 'openssl', 'tar', 'gzip', 'sha1sum', 'xmllint');
    const r = await bundleTo('b1', { userCert: user.certObject, privateKey: user.keyObject, partSize: 1024 * 1024 });
    const xml = readFileSync(r.manifest, 'latin1');
    await run('xmllint', ['--noout', r.manifest]);
    const key = await unwrapWithOpenssl(elementText(xml, 'user_encrypted_key'), user.key);
    const iv = await unwrapWithOpenssl(elementText(xml, 'user_encrypted_iv'), user.key);
    expect(key).toMatch(/^[0-9a-f]{32}$/);
    expect(iv).toMatch(/^[0-9a-f]{32}$/);
    // The cloud's copies hold the same key and IV.
    expect(await unwrapWithOpenssl(elementText(xml, 'ec2_encrypted_key'), cloud.key)).toBe(key);
    expect(await unwrapWithOpenssl(elementText(xml, 'ec2_encrypted_iv'), cloud.key)).toBe(iv);
    const dir = tmp.file('b1');
    const partFiles = readdirSync(dir).filter((n) => n.includes('.part.')).sort();
    expect(partFiles).toEqual(r.parts.map((p) => p.filename));
    expect(partFiles[0]).toBe('disk.img.part.00');
    // Every part but the last is exactly the part size; the sizes add up to bundled_size.
    const sizes = partFiles.map((n) => statSync(`${dir}/${n}`).size);
    expect(sizes.slice(0, -1).every((s) => s === 1024 * 1024)).toBe(true);
    expect(String(sizes.reduce((a, b) => a + b, 0))).toBe(elementText(xml, 'bundled_size'));
    // sha1sum of each part is the manifest's digest for it.
    const sums = (await sh(`sha1sum ${partFiles.join(' ')}`, dir)).trim().split('\n').map((l) => l.split(/\s+/)[0]);
    const manifestSums = [...xml.matchAll(/<filename>[^<]+<\/filename><digest algorithm="SHA1">([0-9a-f]{40})</g)].map((m) => m[1]);
    expect(sums).toEqual(manifestSums);
    // Decrypt, gunzip: the tar stream's SHA-1 is <digest>; tar extracts the image.
    await sh(`cat ${partFiles.join(' ')} | openssl enc -d -aes-128-cbc -K ${key} -iv ${iv} | gzip -dc > ../stream.tar`, dir);
    expect((await sh('sha1sum stream.tar', tmp.path)).split(' ')[0]).toBe(elementText(xml, 'digest'));
    await sh('mkdir -p x && tar -xf stream.tar -C x && cmp x/disk.img disk.img', tmp.path);
    expect(elementText(xml, 'size')).toBe(String(SIZE));
    // The signature: openssl dgst -sha1 -verify over <machine_configuration>...</image>, as in the file.
    const signed = xml.slice(xml.indexOf('<machine_configuration>'), xml.indexOf('</image>') + '</image>'.length);
    writeFileSync(tmp.file('signed.txt'), signed);
    writeFileSync(tmp.file('sig.bin'), Buffer.from(elementText(xml, 'signature'), 'hex'));
    const v = await run('openssl', ['dgst', '-sha1', '-verify', user.pub, '-signature', tmp.file('sig.bin'), tmp.file('signed.txt')]);
    expect(v.stdout).toMatch(/Verified OK/);
    expect(elementText(xml, 'user')).toBe('123456789012');
  });

  it('without a user cert or private key: empty user_* elements and UNSIGNED, as euca2ools', async (ctx) => {
    requireTools(ctx, 'openssl');
    const r = await bundleTo('b2');
    const xml = readFileSync(r.manifest, 'latin1');
    expect(xml).toContain('<user_encrypted_key algorithm="AES-128-CBC"/>');
    expect(xml).toContain('<user_encrypted_iv/>');
    expect(xml.endsWith('<signature>UNSIGNED</signature></manifest>')).toBe(true);
    expect(await unwrapWithOpenssl(elementText(xml, 'ec2_encrypted_key'), cloud.key)).toMatch(/^[0-9a-f]{32}$/);
  });

  it('a stream that is a whole number of parts ends with a 0-byte part', async () => {
    const key = { key: '000102030405060708090a0b0c0d0e0f', iv: 'f0e0d0c0b0a090807060504030201000' };
    const first = await bundleTo('b3', { key, partSize: 64 * 1024 * 1024 });
    expect(first.parts).toHaveLength(1);
    // Same key, same bytes: now cut at exactly the stream's length.
    const exact = await bundleTo('b4', { key, partSize: first.bundledSize });
    expect(exact.parts.map((p) => p.size)).toEqual([first.bundledSize, 0]);
    expect(exact.parts[1]!.filename).toBe('disk.img.part.01');
    expect(exact.parts[1]!.digest).toBe('da39a3ee5e6b4b0d3255bfef95601890afd80709');
    expect(statSync(tmp.file('b4/disk.img.part.01')).size).toBe(0);
    expect(exact.digest).toBe(first.digest);
  });

  it('kernel and ramdisk bundles: kernel_id/ramdisk_id "true", the type, no mappings; -B sorted for machines', async () => {
    const k = await bundleTo('b5', { kernelId: 'true' });
    const kx = readFileSync(k.manifest, 'latin1');
    expect(kx).toContain('<machine_configuration><architecture>x86_64</architecture><kernel_id>true</kernel_id></machine_configuration>');
    expect(elementText(kx, 'type')).toBe('kernel');
    const rd = await bundleTo('b6', { imageType: 'ramdisk' });
    expect(readFileSync(rd.manifest, 'latin1')).toContain('<ramdisk_id>true</ramdisk_id></machine_configuration>');
    await expect(bundleTo('b7', { kernelId: 'true', blockDeviceMappings: [{ virtual: 'ami', device: 'sda1' }] })).rejects.toMatchObject({ code: 'E_USAGE' });
    expect(readdirSync(tmp.file('b7'))).toEqual([]);
    const m = await bundleTo('b8', {
      kernelId: 'eki-0123abcd', ramdiskId: 'eri-0123abcd',
      blockDeviceMappings: [{ virtual: 'root', device: '/dev/sda1' }, { virtual: 'ami', device: 'sda1' }],
    });
    expect(readFileSync(m.manifest, 'latin1')).toContain('<machine_configuration><architecture>x86_64</architecture><block_device_mapping>' +
      '<mapping><virtual>ami</virtual><device>sda1</device></mapping><mapping><virtual>root</virtual><device>/dev/sda1</device></mapping>' +
      '</block_device_mapping><kernel_id>eki-0123abcd</kernel_id><ramdisk_id>eri-0123abcd</ramdisk_id></machine_configuration>');
  });
});
