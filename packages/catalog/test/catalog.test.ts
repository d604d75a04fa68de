import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOTES_AKI_COUNTS, NOTES_EXAMPLE_LINE, NOTES_TOTAL_IMAGES, listingImages, tmpDir, writeListing, type TmpDir } from '@amitrans/testkit';
import { PV_GRUB_AKIS, catalog, pvGrubFromName, type CatalogFilters, type Classified, type ListingWarning } from '../src/index.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(async () => {
  await dir.remove();
});

const stdin = (text: string | Buffer): AsyncIterable<Uint8Array> => Readable.from([Buffer.from(text)]);

async function collect(text: string | Buffer, o: Parameters<typeof catalog>[1] = {}): Promise<{ images: Classified[]; warnings: ListingWarning[]; summary: Awaited<ReturnType<typeof catalog>> }> {
  const images: Classified[] = [];
  const warnings: ListingWarning[] = [];
  const summary = await catalog(['-'], { ...o, stdin: stdin(text), onImage: (c) => void images.push(c), onWarning: (w) => warnings.push(w) });
  return { images, warnings, summary };
}

describe('the notes\' us-east-1 table', () => {
  for (const form of ['text', 'json'] as const) {
    it(`a ${form} listing of 20,369 images gives the notes' twelve counts and 6101 of 20369`, async () => {
      const file = dir.file(`notes.${form}`);
      await writeListing(file, { form });
      const s = await catalog([file]);
      expect(s.total).toBe(NOTES_TOTAL_IMAGES);
      expect(s.pvgrub).toBe(6101);
      expect(Object.fromEntries(s.byAki.map((r) => [r.aki, r.count]))).toEqual(NOTES_AKI_COUNTS);
      // hd0 and hd00 totals as fleet.md §1.1 gives them.
      expect(s.byClass['pvgrub-hd0']).toBe(5933);
      expect(s.byClass['pvgrub-hd00']).toBe(168);
      // The rest is what the generator made, class by class.
      const want = { 'aki-kernel': 0, hvm: 0, kernel: 0, ramdisk: 0, 'no-kernel-info': 0 };
      for (const g of listingImages({ form })) {
        if (g.kind !== 'pvgrub') want[g.kind === 'no-kernel' ? 'no-kernel-info' : g.kind]++;
      }
      expect(s.byClass).toMatchObject(want);
      expect(s.skipped).toBe(0);
    });
  }

  it('each of the twelve has the version, disk and arch of the notes', () => {
    const want: Record<string, [string, string, string]> = {
      'aki-407d9529': ['1.01', 'hd0', 'i386'], 'aki-427d952b': ['1.01', 'hd0', 'x86_64'], 'aki-4c7d9525': ['1.01', 'hd00', 'i386'],
      'aki-4e7d9527': ['1.01', 'hd00', 'x86_64'], 'aki-805ea7e9': ['1.02', 'hd0', 'i386'], 'aki-825ea7eb': ['1.02', 'hd0', 'x86_64'],
      'aki-525ea73b': ['1.02', 'hd00', 'i386'], 'aki-8e5ea7e7': ['1.02', 'hd00', 'x86_64'], 'aki-b6aa75df': ['1.03', 'hd0', 'i386'],
      'aki-88aa75e1': ['1.03', 'hd0', 'x86_64'], 'aki-b2aa75db': ['1.03', 'hd00', 'i386'], 'aki-b4aa75dd': ['1.03', 'hd00', 'x86_64'],
    };
    for (const [aki, [version, disk, arch]] of Object.entries(want)) {
      expect(PV_GRUB_AKIS.find((r) => r.id === aki), aki).toMatchObject({ version, disk, arch, region: 'us-east-1' });
    }
  });
});

describe('classification', () => {
  it('the notes\' example line: pvgrub-hd0, x86_64, instance-store, pv-grub 1.02', async () => {
    const { images, warnings } = await collect(`${NOTES_EXAMPLE_LINE}\n`);
    expect(warnings).toEqual([]);
    expect(images).toHaveLength(1);
    expect(images[0]).toMatchObject({ class: 'pvgrub-hd0', pvgrub: { version: '1.02', disk: 'hd0' }, image: { id: 'ami-002bf169', arch: 'x86_64', rootDeviceType: 'instance-store', owner: '979382823631', public: true } });
  });

  it('the 14- and 15-field text forms, BLOCKDEVICEMAPPING and TAG lines tied to their IMAGE', async () => {
    const text = [
      'IMAGE\tami-e1a1e888\t999999999999/precise-test\t999999999999\tavailable\tprivate\t\tx86_64\tmachine\taki-88aa75e1\t\t\tinstance-store\tparavirtual\txen',
      'BLOCKDEVICEMAPPING\tEPHEMERAL\tsda2\tephemeral0',
      'IMAGE\tami-0000beef\t123456789012/web server\t123456789012\tavailable\tpublic\tx86_64\tmachine\taki-4e7d9527\t\t\tebs\tparavirtual\txen',
      'BLOCKDEVICEMAPPING\tEBS\t/dev/sdb\tsnap-bbbbbbbb\t20\ttrue\tstandard\t',
      'BLOCKDEVICEMAPPING\tEBS\t/dev/sda1\tsnap-aaaaaaaa\t8\ttrue\tstandard\t',
      'TAG\timage\tami-0000beef\tName\tweb server 1',
      'IMAGE\tami-0000cafe\tamazon/amzn-hvm\tamazon\tavailable\tpublic\tx86_64\tmachine\t\t\t\tebs\thvm\txen',
      'IMAGE\tami-0000f00d\tx/y.manifest.xml\t1\tavailable\tpublic\ti386\tmachine\taki-6eaa4907\tari-11111111\t\tinstance-store\tparavirtual\txen',
      'IMAGE\tami-0000d00d\tx/z.manifest.xml\t1\tavailable\tpublic\ti386\tmachine\t\t\t\tinstance-store\tparavirtual\txen',
    ].join('\n');
    const { images, warnings } = await collect(text);
    expect(warnings).toEqual([]);
    expect(images.map((c) => [c.image.id, c.class])).toEqual([
      ['ami-e1a1e888', 'pvgrub-hd0'], ['ami-0000beef', 'pvgrub-hd00'], ['ami-0000cafe', 'hvm'], ['ami-0000f00d', 'aki-kernel'], ['ami-0000d00d', 'no-kernel-info'],
    ]);
    expect(images[1]!.image).toMatchObject({ location: '123456789012/web server', rootDeviceType: 'ebs', snapshot: 'snap-aaaaaaaa', tags: { Name: 'web server 1' } });
    expect(images[3]!.image.ramdiskId).toBe('ari-11111111');
  });

  it('an AKI missing from the table but named pv-grub in --kernels is classified from its name', async () => {
    const kernels = dir.file('kernels.txt');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(kernels, [
      'IMAGE\taki-0123abcd\tamazon/pv-grub-hd00_1.05-x86_64.gz\tamazon\tavailable\tpublic\tx86_64\tkernel\t\t\t\tinstance-store\tparavirtual\txen',
      'IMAGE\taki-4567cdef\tec2-public-images/pv-grub-hd0-V1.01-i386.gz.manifest.xml\tamazon\tavailable\tpublic\ti386\tkernel\t\t\t\tinstance-store\tparavirtual\txen',
      'IMAGE\taki-89abcdef\tamazon/vmlinuz-2.6.21.7-2.fc8xen\tamazon\tavailable\tpublic\ti386\tkernel\t\t\t\tinstance-store\tparavirtual\txen',
    ].join('\n'));
    const text = ['aki-0123abcd', 'aki-4567cdef', 'aki-89abcdef'].map((k, i) => `IMAGE\tami-0000000${i}\tb/x.manifest.xml\t1\tavailable\tpublic\tx86_64\tmachine\t${k}\t\t\tinstance-store\tparavirtual\txen`).join('\n');
    const without = await collect(text);
    expect(without.images.map((c) => c.class)).toEqual(['aki-kernel', 'aki-kernel', 'aki-kernel']);
    const withKernels = await collect(text, { kernels: [kernels] });
    expect(withKernels.summary.kernelsLearned).toBe(2);
    expect(withKernels.images.map((c) => [c.class, c.pvgrub?.version])).toEqual([['pvgrub-hd00', '1.05'], ['pvgrub-hd0', '1.01'], ['aki-kernel', undefined]]);
  });

  it('kernel names in every spelling the sources show', () => {
    expect(pvGrubFromName('pv-grub-hd0-V1.01-x86_64.gz')).toEqual({ version: '1.01', disk: 'hd0', arch: 'x86_64' });
    expect(pvGrubFromName('ec2-public-images/pv-grub-hd00_1.02-i386.gz.manifest.xml')).toEqual({ version: '1.02', disk: 'hd00', arch: 'i386' });
    expect(pvGrubFromName('amazon/pv-grub-hd0_1.05-x86_64.gz')).toEqual({ version: '1.05', disk: 'hd0', arch: 'x86_64' });
    expect(pvGrubFromName('RH-pv-grub-hd0-V1.01-i386.gz')).toEqual({ version: 'RH-1.01', disk: 'hd0', arch: 'i386' });
    expect(pvGrubFromName('amazon/vmlinuz-2.6.21.7-2.fc8xen')).toBeUndefined();
    expect(pvGrubFromName('my-pv-grub-hd0_1.05-x86_64.gz')).toBeUndefined();
  });

  it('filters: --aki, --class, --arch, --root-type, --owner', async () => {
    const file = dir.file('filters.txt');
    await writeListing(file, { form: 'text', total: 3000, counts: { 'aki-825ea7eb': 400, 'aki-4c7d9525': 50 } });
    const all = [...listingImages({ form: 'text', total: 3000, counts: { 'aki-825ea7eb': 400, 'aki-4c7d9525': 50 } })];
    const ids = async (filters: CatalogFilters): Promise<string[]> => {
      const got: string[] = [];
      await catalog([file], { filters, onImage: (c) => void got.push(c.image.id) });
      return got;
    };
    expect(await ids({ aki: ['aki-825ea7eb'] })).toEqual(all.filter((g) => g.kernel === 'aki-825ea7eb').map((g) => g.id));
    expect(await ids({ class: ['pvgrub-hd00'] })).toEqual(all.filter((g) => g.kernel === 'aki-4c7d9525').map((g) => g.id));
    expect(await ids({ arch: ['i386'], rootType: ['ebs'] })).toEqual(all.filter((g) => g.arch === 'i386' && g.rootDeviceType === 'ebs').map((g) => g.id));
    const owner = all[7]!.owner;
    expect(await ids({ owner: [owner] })).toEqual(all.filter((g) => g.owner === owner).map((g) => g.id));
  });
});

describe('bad input: warnings with line numbers, never a crash', () => {
  it('short, binary, unknown and 1 MB lines are skipped and named by line', async () => {
    const lines = [
      NOTES_EXAMPLE_LINE, // 1
      'IMAGE\tami-11111111\tonly-three', // 2: short
      'IMAGE\tnot-an-id\tx\ty\tavailable\tpublic', // 3
      '\u0000\u0001\u0002binary\u00ff', // 4
      `TAG\timage\tami-002bf169\tBig\t${'x'.repeat(1024 * 1024)}`, // 5: a 1 MB line
      'PRODUCTCODES\tami-002bf169\tdevpay', // 6
      'BLOCKDEVICEMAPPING', // 7: short
      NOTES_EXAMPLE_LINE.replace('ami-002bf169', 'ami-002bf16a'), // 8
    ];
    const { images, warnings, summary } = await collect(lines.join('\n'));
    expect(images.map((c) => c.image.id)).toEqual(['ami-002bf169', 'ami-002bf16a']);
    expect(warnings.map((w) => w.line)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(warnings[3]!.message).toMatch(/longer than 65536 bytes/);
    expect(warnings.every((w) => w.file === '(stdin)')).toBe(true);
    expect(summary.skipped).toBe(6);
  });

  it('a TAG or mapping before any IMAGE, or a TAG for another image', async () => {
    const { warnings } = await collect(['TAG\timage\tami-11111111\tName\tx', NOTES_EXAMPLE_LINE, 'TAG\timage\tami-22222222\tName\ty'].join('\n'));
    expect(warnings.map((w) => [w.line, w.message])).toEqual([[1, expect.stringMatching(/before any IMAGE/)], [3, expect.stringMatching(/TAG for ami-22222222 follows IMAGE ami-002bf169/)]]);
  });

  it('JSON: a broken element, a non-image object, garbage between pages, a truncated end', async () => {
    const text = [
      '{"Images": [{"ImageId": "ami-11111111", "KernelId": "aki-825ea7eb", "Architecture": "x86_64"},',
      '  {"ImageId": "ami-22222222", "KernelId": tru},',
      '  {"Name": "no id"}]}',
      'garbage',
      '{"ImageId": "ami-33333333", "VirtualizationType": "hvm"}',
      '{"Images": [{"ImageId": "ami-44444444"',
    ].join('\n');
    const { images, warnings } = await collect(text);
    expect(images.map((c) => [c.image.id, c.class])).toEqual([['ami-11111111', 'pvgrub-hd0'], ['ami-33333333', 'hvm']]);
    expect(warnings.map((w) => w.line).sort((a, b) => a - b)).toEqual([2, 3, 4, 6]);
  });

  it('a JSON image object over 1 MiB is skipped with a warning, the next one read', async () => {
    const big = JSON.stringify({ ImageId: 'ami-11111111', Description: 'x'.repeat(2 * 1024 * 1024) });
    const { images, warnings } = await collect(`{"Images": [${big},\n{"ImageId": "ami-22222222"}]}`);
    expect(images.map((c) => c.image.id)).toEqual(['ami-22222222']);
    expect(warnings).toEqual([{ file: '(stdin)', line: 1, message: expect.stringMatching(/larger than 1048576 bytes/) }]);
  });

  it('JSON split at every byte reads the same as whole', async () => {
    const text = '{"Images": [{"ImageId": "ami-11111111", "Tags": [{"Key": "a\\"]}", "Value": "{["}], "KernelId": "aki-825ea7eb"}, {"ImageId": "ami-22222222"}], "NextToken": "t"}\n{"ImageId": "ami-33333333"}';
    const whole = (await collect(text)).images.map((c) => c.image);
    expect(whole.map((i) => i.id)).toEqual(['ami-11111111', 'ami-22222222', 'ami-33333333']);
    expect(whole[0]!.tags).toEqual({ 'a"]}': '{[' });
    const bytes = Buffer.from(text);
    const images: string[] = [];
    await catalog(['-'], { stdin: Readable.from([...bytes].map((b) => Buffer.from([b]))), onImage: (c) => void images.push(c.image.id) });
    expect(images).toEqual(whole.map((i) => i.id));
  });

  it('a missing listing is an ImageError naming it', async () => {
    await expect(catalog([dir.file('nope.txt')])).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining('nope.txt') });
  });
});
