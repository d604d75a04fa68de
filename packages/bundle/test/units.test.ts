import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageError } from '@amitrans/block';
import { prng, requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import {
  ParallelGzip,
  TarExtractor,
  manifestXml,
  parseManifest,
  tarHeader,
  tarStreamLength,
  type ManifestFields,
} from '../src/index.js';
import { sh } from './helpers.js';

let tmp: TmpDir;
beforeAll(async () => {
  tmp = await tmpDir('amitrans-bundle-unit-');
});
afterAll(async () => {
  await tmp.remove();
});

/** Python's tarfile GNU headers for bare TarInfos (what euca2ools builds), one python run. */
async function pythonHeaders(name: string, sizes: readonly number[]): Promise<Buffer[]> {
  const out = await run('python3', ['-c', `import tarfile,sys
for size in ${JSON.stringify(sizes)}:
    ti = tarfile.TarInfo(${JSON.stringify(name)}); ti.size = size
    print(ti.tobuf(format=tarfile.GNU_FORMAT).hex())`]);
  return out.stdout.trim().split('\n').map((h) => Buffer.from(h, 'hex'));
}

describe('tar member header', () => {
  it('matches Python tarfile GNU_FORMAT, octal and base-256 sizes', async (ctx) => {
    requireTools(ctx, 'python3', 'tar');
    const sizes = [0, 1000, 2 ** 33 - 1, 9 * 2 ** 30, 2 ** 40 + 512];
    const headers = await pythonHeaders('image.img', sizes);
    for (const [n, size] of sizes.entries()) {
      const ours = Buffer.from(tarHeader('image.img', size));
      const py = headers[n]!;
      // Python 3.9+ leaves devmajor/devminor empty for regular files; Python 2.7, which
      // euca2ools runs on, writes them as octal zeros. Everything else is byte for byte.
      const skip = (i: number): boolean => (i >= 148 && i < 156) || (i >= 329 && i < 345);
      for (let i = 0; i < 512; i++) if (!skip(i)) expect([i, ours[i]]).toEqual([i, py[i]]);
      expect(ours.subarray(329, 345).toString('latin1')).toBe('0000000\0' + '0000000\0');
      if (size >= 2 ** 33) expect(ours[124]).toBe(0x80);
    }
    // 9 GiB as the spec spells it: 80 00 .. 02 40 00 00 00
    expect(Buffer.from(tarHeader('x', 9 * 2 ** 30).subarray(124, 136)).toString('hex')).toBe('800000000000000240000000');
    // GNU tar reads our header (checksum included) as mode 0644, 0/0, mtime 0.
    const h = Buffer.from(tarHeader('image.img', 1000));
    writeFileSync(tmp.file('one.tar'), Buffer.concat([h, Buffer.alloc(tarStreamLength(1000) - 512)]));
    const listing = (await run('tar', ['-tvf', tmp.file('one.tar'), '--full-time', '--numeric-owner'])).stdout;
    expect(listing).toMatch(/^-rw-r--r-- 0\/0 +1000 1970-01-01 00:00:00 image.img$/m);
  });

  it('a 1000-byte member makes a 10240-byte stream (RECORDSIZE padding)', () => {
    expect(tarStreamLength(1000)).toBe(10240);
    expect(tarStreamLength(10240 - 1536)).toBe(10240);
    expect(tarStreamLength(10240 - 1535)).toBe(20480);
  });

  it('refuses names tar cannot hold in the header', () => {
    expect(() => tarHeader('x'.repeat(101), 1)).toThrow(ImageError);
    expect(() => tarHeader('', 1)).toThrow(ImageError);
  });
});

describe('parallel gzip', () => {
  it('gunzip reads it back; blocks cut mid-stream keep the window; the trailer is right', async (ctx) => {
    requireTools(ctx, 'gzip');
    const rnd = prng(11);
    const pieces: Uint8Array[] = [];
    // Text-like data with repeats across block boundaries, zeros, and noise.
    const words = Array.from({ length: 300 }, (_, i) => `word${i} `).join('');
    for (let i = 0; i < 40; i++) {
      const r = rnd.next();
      pieces.push(r < 0.4 ? Buffer.from(words.repeat(rnd.int(1, 400))) : r < 0.7 ? new Uint8Array(rnd.int(1, 300_000)) : rnd.bytes(rnd.int(1, 200_000)));
    }
    const input = Buffer.concat(pieces);
    const out: Uint8Array[] = [];
    const gz = new ParallelGzip(async (d) => void out.push(Buffer.from(d)), 2);
    for (const p of pieces) await gz.write(p);
    await gz.end();
    writeFileSync(tmp.file('p.gz'), Buffer.concat(out));
    await sh(`gzip -t p.gz && gzip -dc p.gz > p.raw`, tmp.path);
    expect(readFileSync(tmp.file('p.raw')).equals(input)).toBe(true);
    // Same compression as gzip -6 give or take the sync markers (5 bytes a block).
    const ref = (await sh(`gzip -6 -c p.raw | wc -c`, tmp.path)).trim();
    expect(Buffer.concat(out).length).toBeLessThan(Number(ref) * 1.02 + 5 * 64);
  });

  it('an empty input is a valid empty gzip stream', async (ctx) => {
    requireTools(ctx, 'gzip');
    const out: Uint8Array[] = [];
    const gz = new ParallelGzip(async (d) => void out.push(Buffer.from(d)));
    await gz.end();
    writeFileSync(tmp.file('e.gz'), Buffer.concat(out));
    expect(await sh('gzip -dc e.gz | wc -c', tmp.path)).toBe('0\n');
  });
});

const FIELDS: ManifestFields = {
  bundler: { name: 'amitrans', version: '0.1.0', release: '0' },
  architecture: 'x86_64',
  blockDeviceMappings: [{ virtual: 'root', device: '/dev/sda1' }, { virtual: 'ami', device: 'sda1' }, { virtual: 'ephemeral0', device: 'sda2' }],
  productCodes: [],
  kernelId: 'eki-12345678',
  ramdiskId: 'eri-87654321',
  name: 'débian & <friends>',
  user: '123456789012',
  imageType: 'machine',
  digest: 'a'.repeat(40),
  digestAlgorithm: 'SHA1',
  size: 1234,
  bundledSize: 99,
  encryptionAlgorithm: 'AES-128-CBC',
  ec2EncryptedKey: 'ab'.repeat(256),
  userEncryptedKey: '',
  ec2EncryptedIv: 'cd'.repeat(256),
  userEncryptedIv: '',
  parts: [{ index: 0, filename: 'x.part.00', digest: 'b'.repeat(40) }, { index: 1, filename: 'x.part.01', digest: 'c'.repeat(40) }],
};

/** The python3 + lxml oracle: element order, and lxml's own serialisation of what it parsed equals the file. */
const LXML_CHECK = `
import sys
from lxml import etree
data = open(sys.argv[1], 'rb').read()
root = etree.fromstring(data)
def kids(e): return [c.tag for c in e]
assert kids(root) == ['version', 'bundler', 'machine_configuration', 'image', 'signature'], kids(root)
mc = root.find('machine_configuration')
order = ['architecture', 'block_device_mapping', 'product_codes', 'kernel_id', 'ramdisk_id']
k = kids(mc); assert k == [t for t in order if t in k], k
img = root.find('image')
order = ['name', 'user', 'type', 'digest', 'size', 'bundled_size', 'ec2_encrypted_key', 'user_encrypted_key', 'ec2_encrypted_iv', 'user_encrypted_iv', 'parts']
assert kids(img) == order, kids(img)
assert img.find('ec2_encrypted_iv').get('algorithm') is None and img.find('user_encrypted_iv').get('algorithm') is None
assert img.find('ec2_encrypted_key').get('algorithm') == 'AES-128-CBC'
maps = [m.findtext('virtual') for m in mc.iter('mapping')]
assert maps == sorted(maps), maps
parts = img.find('parts'); assert parts.get('count') == str(len(parts)), parts.get('count')
assert [p.get('index') for p in parts] == [str(i) for i in range(len(parts))]
again = etree.tostring(root.getroottree(), xml_declaration=True).strip()
assert again == data, (again, data)
signed = etree.tostring(mc) + etree.tostring(img)
sys.stdout.write(signed.decode('ascii'))
`;

describe('manifest bytes', () => {
  it('are what lxml writes for the same tree: order, declaration, one line, self-closing, ASCII', async (ctx) => {
    requireTools(ctx, '/usr/bin/python3');
    const ok = await run('/usr/bin/python3', ['-c', 'import lxml']).then(() => true, () => false);
    if (!ok && process.env.CI) throw new Error('python3-lxml is missing (apt-get install python3-lxml)');
    if (!ok) ctx.skip('python3-lxml missing');
    let signedSeen = '';
    const xml = manifestXml(FIELDS, (s) => ((signedSeen = s), 'ef'.repeat(256)));
    expect(xml.startsWith("<?xml version='1.0' encoding='ASCII'?>\n<manifest>")).toBe(true);
    expect(xml.endsWith('</manifest>')).toBe(true);
    expect(xml.split('\n')).toHaveLength(2);
    expect(xml).toContain('<user_encrypted_key algorithm="AES-128-CBC"/><ec2_encrypted_iv>');
    expect(xml).toContain('<name>d&#233;bian &amp; &lt;friends&gt;</name>');
    writeFileSync(tmp.file('m.xml'), xml);
    const signed = (await run('/usr/bin/python3', ['-c', LXML_CHECK, tmp.file('m.xml')])).stdout;
    expect(signed).toBe(signedSeen);
    await run('xmllint', ['--noout', tmp.file('m.xml')]);
    // Unsigned and kernel forms.
    const k = manifestXml({ ...FIELDS, imageType: 'kernel', kernelId: 'true', ramdiskId: undefined });
    expect(k).toContain('<machine_configuration><architecture>x86_64</architecture><kernel_id>true</kernel_id></machine_configuration>');
    expect(k).toContain('<signature>UNSIGNED</signature></manifest>');
    writeFileSync(tmp.file('k.xml'), k);
    await run('/usr/bin/python3', ['-c', LXML_CHECK, tmp.file('k.xml')]);
  });

  it('parse reads back every field and the exact signed bytes', () => {
    let signed = '';
    const xml = manifestXml(FIELDS, (s) => ((signed = s), 'ef'.repeat(4)));
    const p = parseManifest(xml);
    expect(p.signedText).toBe(signed);
    expect(p.manifest).toMatchObject({ ...FIELDS, blockDeviceMappings: [...FIELDS.blockDeviceMappings].sort((a, b) => a.virtual.localeCompare(b.virtual)), signature: 'efefefef', version: '2007-10-10' });
  });

  it('reads ec2-ami-tools style manifests with whitespace and the other element order', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<manifest>
  <version>2007-10-10</version>
  <bundler><name>ec2-ami-tools</name><version>1.5</version><release>3</release></bundler>
  <machine_configuration><architecture>i386</architecture><kernel_id>aki-825ea7eb</kernel_id></machine_configuration>
  <image><name>old</name><user>1</user><type>machine</type><digest algorithm="SHA1">${'1'.repeat(40)}</digest><size>5</size><bundled_size>7</bundled_size>
  <ec2_encrypted_key algorithm="AES-128-CBC">aa</ec2_encrypted_key><user_encrypted_key algorithm="AES-128-CBC">bb</user_encrypted_key>
  <ec2_encrypted_iv>cc</ec2_encrypted_iv><user_encrypted_iv>dd</user_encrypted_iv>
  <parts count="1"><part index="0"><filename>old.part.0</filename><digest algorithm="SHA1">${'2'.repeat(40)}</digest></part></parts></image>
  <signature>00</signature>
</manifest>
`;
    const p = parseManifest(xml);
    expect(p.manifest).toMatchObject({ name: 'old', kernelId: 'aki-825ea7eb', architecture: 'i386', parts: [{ filename: 'old.part.0' }] });
    expect(p.signedText.startsWith('<machine_configuration>') && p.signedText.endsWith('</image>')).toBe(true);
  });

  it('typed errors name the element: truncated, bad digest, path in a part name, count mismatch, DTD', () => {
    const good = manifestXml(FIELDS);
    const cases: [string, RegExp][] = [
      [good.slice(0, good.length / 2), /ends inside/],
      [good.replace('a'.repeat(40), 'zz'), /<digest>/],
      [good.replace('x.part.01', '../etc/passwd'), /plain file name/],
      [good.replace('count="2"', 'count="3"'), /count="3"/],
      [`<!DOCTYPE m [<!ENTITY a "b">]>${good.slice(good.indexOf('<manifest'))}`, /DTD/],
      [good.replace('<size>1234</size>', '<size>12345678901234567890</size>'), /<size>/],
      [good.replace(/<user_encrypted_key[^>]*\/>/, ''), /<user_encrypted_key>/],
    ];
    for (const [xml, message] of cases) {
      let err: unknown;
      try {
        parseManifest(xml);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ImageError);
      expect((err as ImageError).message).toMatch(message);
    }
  });

  it('fuzz: mutated manifests give an ImageError or a manifest, never anything else', () => {
    const base = Buffer.from(manifestXml(FIELDS, () => 'ab'.repeat(8)));
    const rnd = prng(99);
    const alphabet = Buffer.from('<>/="\'&;# \n!?[]-abcx0');
    for (let i = 0; i < 4000; i++) {
      const b = Buffer.from(base);
      const edits = rnd.int(1, 6);
      let cut = b.length;
      for (let e = 0; e < edits; e++) {
        const r = rnd.next();
        const at = rnd.int(0, b.length - 1);
        if (r < 0.5) b[at] = alphabet[rnd.int(0, alphabet.length - 1)]!;
        else if (r < 0.8) b[at] = rnd.int(0, 255);
        else cut = Math.min(cut, at);
      }
      try {
        parseManifest(b.subarray(0, cut));
      } catch (err) {
        if (!(err instanceof ImageError)) throw new Error(`case ${i}: ${String(err)}`);
      }
    }
  });
});

class Collect {
  name = '';
  size = -1;
  out: Buffer = Buffer.alloc(0);
  async begin(name: string, size: number): Promise<void> {
    this.name = name;
    this.size = size;
    this.out = Buffer.alloc(size);
  }
  async write(data: Uint8Array, position: number): Promise<void> {
    this.out.set(data, position);
  }
}

async function extract(path: string, pieceSize: number): Promise<Collect> {
  const c = new Collect();
  const x = new TarExtractor(c);
  const data = readFileSync(path);
  for (let i = 0; i < data.length; i += pieceSize) await x.push(data.subarray(i, i + pieceSize));
  await x.end();
  return c;
}

describe('tar extractor', () => {
  it('reads GNU tar members: regular, old-GNU sparse with extension headers, long names', async (ctx) => {
    requireTools(ctx, 'tar');
    const rnd = prng(3);
    // A sparse file with 30 data runs: more than the 4 the header holds, so extension headers follow.
    const size = 8 * 1024 * 1024;
    const img = Buffer.alloc(size);
    const runs: [number, Buffer][] = [];
    for (let i = 0; i < 30; i++) {
      const at = i * 256 * 1024 + rnd.int(0, 100) * 512;
      const data = Buffer.from(rnd.bytes(rnd.int(1, 40) * 512 + rnd.int(0, 511)));
      data.copy(img, at);
      runs.push([at, data]);
    }
    const name = `${'long-name-'.repeat(12)}.img`;
    const fd = await import('node:fs/promises').then((fs) => fs.open(tmp.file(name), 'w'));
    await fd.truncate(size);
    for (const [at, data] of runs) await fd.write(data, 0, data.length, at);
    await fd.close();
    await sh(`tar --format=gnu -cSf sparse.tar '${name}' && tar --format=gnu -cf plain.tar '${name}'`, tmp.path);
    const headerType = readFileSync(tmp.file('sparse.tar')).subarray(1024)[156];
    expect(String.fromCharCode(headerType!)).toBe('S'); // after the 'L' long-name header and its one block of name
    for (const file of ['sparse.tar', 'plain.tar']) {
      for (const piece of [1, 511, 4096, 1 << 20]) {
        if (piece === 1 && file === 'plain.tar') continue;
        const c = await extract(tmp.file(file), piece === 1 ? 97 : piece);
        expect([file, c.name, c.size]).toEqual([file, name, size]);
        expect(c.out.equals(img)).toBe(true);
      }
    }
  });

  it('a truncated stream, a bad checksum and a non-file member are typed errors', async (ctx) => {
    requireTools(ctx, 'tar');
    writeFileSync(tmp.file('f'), 'hello');
    await sh('mkdir -p d && tar -cf t.tar f && tar -cf dir.tar d', tmp.path);
    const t = readFileSync(tmp.file('t.tar'));
    const run1 = async (b: Uint8Array): Promise<string> => {
      const x = new TarExtractor(new Collect());
      try {
        await x.push(b);
        await x.end();
        return 'ok';
      } catch (err) {
        return err instanceof ImageError ? err.code : String(err);
      }
    };
    expect(await run1(t.subarray(0, 514))).toBe('E_TRUNCATED');
    const bad = Buffer.from(t);
    bad[0] = 0x67;
    expect(await run1(bad)).toBe('E_BAD_CHECKSUM');
    expect(await run1(readFileSync(tmp.file('dir.tar')))).toBe('E_UNSUPPORTED');
    expect(await run1(new Uint8Array(10240))).toBe('E_CORRUPT');
  });

  it('fuzz: mutated sparse headers give an ImageError, never a crash or a hang', async (ctx) => {
    requireTools(ctx, 'tar');
    const base = readFileSync(tmp.file('sparse.tar')).subarray(0, 4 * 512);
    const rnd = prng(7);
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(base);
      for (let e = rnd.int(1, 4); e > 0; e--) b[rnd.int(0, b.length - 1)] = rnd.next() < 0.5 ? rnd.int(0, 255) : 0x30 + rnd.int(0, 7);
      const x = new TarExtractor({ begin: async () => undefined, write: async () => undefined });
      try {
        await x.push(b);
        await x.end();
      } catch (err) {
        if (!(err instanceof ImageError)) throw new Error(`case ${i}: ${String(err)}`);
      }
    }
  });
});
