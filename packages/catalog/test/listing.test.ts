import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOTES_AKIS, OTHER_AKIS, tmpDir, writeListing, type ListingFacts, type TmpDir } from '@amitrans/testkit';
import { chunked, run } from './helpers.js';
import { plainRecord, readListing, renderSummary, type ImageRecord, type ListingWarning } from '../src/index.js';

let dir: TmpDir;
const facts: Record<string, ListingFacts> = {};
beforeAll(async () => {
  dir = await tmpDir();
  for (const form of ['text', 'text15', 'json', 'jsonl'] as const) facts[form] = await writeListing(join(dir.path, form), { form });
});
afterAll(async () => {
  await dir.remove();
});

describe('the notes\' us-east-1 listing (fleet.md §1.1)', () => {
  it('text form: exactly the per-AKI counts, 6101 pv-grub of 20369', async () => {
    const { summary, warnings } = await run([{ file: join(dir.path, 'text') }]);
    expect(warnings).toEqual([]);
    expect(facts.text!.lines).toBeGreaterThan(20369 * 2);
    expect(summary.imagesRead).toBe(20369);
    expect(summary.totalPvGrub).toBe(6101);
    expect(summary.linesSkipped).toBe(0);
    const rows = Object.fromEntries(summary.akis.map((r) => [r.aki, r]));
    expect(Object.keys(rows).sort()).toEqual(NOTES_AKIS.map((a) => a.aki).sort());
    for (const a of NOTES_AKIS) expect(rows[a.aki], a.aki).toMatchObject({ version: a.version, disk: a.disk, arch: a.arch, images: a.amis, from: 'table' });
    // hd0 5933, hd00 168 (fleet.md §1.1 totals).
    expect(summary.byClass['pvgrub-hd0']).toBe(5933);
    expect(summary.byClass['pvgrub-hd00']).toBe(168);
    expect(summary.byClass['aki-kernel']).toBe(facts.text!.akiKernel);
    expect(summary.byClass.hvm).toBe(facts.text!.hvm);
    expect(summary.byClass['no-kernel-info']).toBe(facts.text!.kernelImages);
    expect(renderSummary(summary)).toContain('Total pv-grub AMIs: 6101 of 20369');
  });

  it('the 15-field text form, describe-images JSON pages and JSON lines give the same table', async () => {
    const text = (await run([{ file: join(dir.path, 'text') }])).summary;
    for (const form of ['text15', 'json', 'jsonl']) {
      const other = await run([{ file: join(dir.path, form) }]);
      expect(other.warnings, form).toEqual([]);
      expect(other.summary, form).toEqual(text);
    }
  });

  it('text and JSON give the same images, field for field, wherever the chunks end', async () => {
    const { images: fromText } = await run([{ file: join(dir.path, 'text') }]);
    const json = await readFile(join(dir.path, 'json'));
    // Odd chunk sizes cut strings, escapes and objects in every place.
    const { images: fromJson } = await run([json], { chunk: 4093 });
    expect(fromJson.length).toBe(fromText.length);
    // The text form has no Name apart from the location.
    const strip = (i: ImageRecord): Partial<ImageRecord> => ({ ...plainRecord(i), source: '', line: 0, name: '' });
    for (let i = 0; i < fromText.length; i += 97) expect(strip(fromJson[i]!)).toEqual(strip(fromText[i]!));
  });
});

describe('the text form, wherever the chunks end', () => {
  it('gives the same images field for field (tags and snapshots too) in chunks of 997 bytes, with CRLF line ends', async () => {
    const data = await readFile(join(dir.path, 'text'));
    const part = data.subarray(0, data.indexOf('\n', 400_000) + 1);
    const whole = (await run([part], { chunk: part.length })).images.map(plainRecord);
    const small = await run([part], { chunk: 997 });
    expect(small.warnings).toEqual([]);
    expect(small.images.map(plainRecord)).toEqual(whole);
    expect(whole.some((i) => i.snapshotId !== '' && Object.keys(i.tags).length > 0)).toBe(true);
    const crlf = await run([part.toString('latin1').replace(/\n/g, '\r\n')], { chunk: 4096 });
    expect(crlf.warnings).toEqual([]);
    expect(crlf.images.map(plainRecord).map((i) => ({ ...i, source: 'input0' }))).toEqual(whole);
  });
});

const EXAMPLE = 'IMAGE   ami-002bf169    bitnami-cloud/wordpress/bitnami-wordpress-3.3.2-0-multisite-linux-ubuntu-12.04-x86_64-s3.manifest.xml   979382823631    available       public          x86_64  machine aki-825ea7eb';

describe('classification', () => {
  it('the notes\' example line: pvgrub-hd0, x86_64, instance-store, pv-grub 1.02', async () => {
    const { images, warnings } = await run([`${EXAMPLE}\n`]);
    expect(warnings).toEqual([]);
    expect(images).toHaveLength(1);
    expect(images[0]).toMatchObject({
      id: 'ami-002bf169', class: 'pvgrub-hd0', arch: 'x86_64', rootDeviceType: 'instance-store', owner: '979382823631', state: 'available', public: true,
      pvgrub: { version: '1.02', disk: 'hd0', aki: 'aki-825ea7eb' },
    });
  });

  it('reads the 14- and 15-field IMAGE lines and ties BLOCKDEVICEMAPPING and TAG lines to their image', async () => {
    const text = [
      ['IMAGE', 'ami-e1a1e888', '999999999999/precise-test', '999999999999', 'available', 'private', '', 'x86_64', 'machine', 'aki-88aa75e1', '', '', 'ebs', 'paravirtual', 'xen'],
      ['BLOCKDEVICEMAPPING', 'EPHEMERAL', 'sda2', 'ephemeral0'],
      ['BLOCKDEVICEMAPPING', 'EBS', '/dev/sda1', 'snap-12345678', '10', 'true', 'standard', ''],
      ['TAG', 'image', 'ami-e1a1e888', 'Name', 'precise test'],
      ['IMAGE', 'ami-11111111', 'amazon/win', 'amazon', 'available', 'public', 'x86_64', 'machine', '', '', 'windows', 'ebs', 'hvm', 'xen'],
      ['IMAGE', 'aki-88aa75e1', 'amazon/pv-grub-hd0_1.03-x86_64.gz', 'amazon', 'available', 'public', 'x86_64', 'kernel', '', '', '', 'instance-store', 'paravirtual', 'xen'],
      ['IMAGE', 'ami-22222222', 'b/x.manifest.xml', '123', 'pending', 'private', 'i386', 'machine', 'aki-f0012345', 'ari-12345678', '', 'instance-store', 'paravirtual', 'xen'],
    ].map((f) => f.join('\t')).join('\n');
    const { images, warnings } = await run([text]);
    expect(warnings).toEqual([]);
    expect(images.map((i) => [i.id, i.class])).toEqual([['ami-e1a1e888', 'pvgrub-hd0'], ['ami-11111111', 'hvm'], ['aki-88aa75e1', 'no-kernel-info'], ['ami-22222222', 'aki-kernel']]);
    expect(images[0]).toMatchObject({ snapshotId: 'snap-12345678', tags: { Name: 'precise test' }, public: false, rootDeviceType: 'ebs', name: 'precise-test' });
    expect(images[1]).toMatchObject({ platform: 'windows', virtualizationType: 'hvm' });
    expect(images[3]).toMatchObject({ ramdiskId: 'ari-12345678', state: 'pending', arch: 'i386', line: 7 });
  });

  it('an AKI missing from the table but in --kernels is classified from its name', async () => {
    const kernels = JSON.stringify({ Images: [
      { ImageId: 'aki-0badf00d', ImageLocation: 'ec2-public-images-xx/pv-grub-hd00_1.04-i386.gz.manifest.xml', ImageType: 'kernel', OwnerId: '206029621532', ImageOwnerAlias: 'amazon' },
      { ImageId: 'aki-0badf00e', Name: 'pv-grub-hd0-V1.01-x86_64.gz', ImageType: 'kernel' },
      { ImageId: 'aki-0badf00f', ImageLocation: 'ec2-public-images/vmlinuz-2.6.21.7-2.fc8xen.manifest.xml', ImageType: 'kernel' },
    ] });
    const listing = ['aki-0badf00d', 'aki-0badf00e', 'aki-0badf00f', 'aki-12345678']
      .map((aki, i) => ['IMAGE', `ami-0000000${i}`, `b/${i}.manifest.xml`, '1', 'available', 'public', 'i386', 'machine', aki, '', '', 'instance-store', 'paravirtual', 'xen'].join('\t')).join('\n');
    const without = await run([listing]);
    expect(without.images.map((i) => i.class)).toEqual(['aki-kernel', 'aki-kernel', 'aki-kernel', 'aki-kernel']);
    const { images, summary } = await run([listing], { kernels: { source: 'kernels.json', chunks: chunked(kernels, 100) } });
    expect(images.map((i) => i.class)).toEqual(['pvgrub-hd00', 'pvgrub-hd0', 'aki-kernel', 'aki-kernel']);
    expect(images[0]!.pvgrub).toMatchObject({ version: '1.04', disk: 'hd00', arch: 'i386', from: 'kernels' });
    expect(images[1]!.pvgrub).toMatchObject({ version: '1.01', disk: 'hd0', arch: 'x86_64', from: 'kernels' });
    expect(summary.totalPvGrub).toBe(2);
  });

  it('filters: every one given must hold', async () => {
    const { summary, images } = await run([{ file: join(dir.path, 'text') }], { filter: { classes: ['pvgrub-hd00'], arches: ['x86_64'] } });
    expect(summary.selected).toBe(74 + 29 + 11);
    expect(images.every((i) => i.class === 'pvgrub-hd00' && i.arch === 'x86_64')).toBe(true);
    const ebs = await run([{ file: join(dir.path, 'jsonl') }], { filter: { akis: [OTHER_AKIS[0]], rootTypes: ['ebs'] } });
    expect(ebs.images.length).toBeGreaterThan(0);
    expect(ebs.images.every((i) => i.kernelId === OTHER_AKIS[0] && i.rootDeviceType === 'ebs' && i.snapshotId.startsWith('snap-'))).toBe(true);
  });
});

describe('bad input: warnings with line numbers, never an exception', () => {
  async function read(data: Buffer | string, chunk = 1000): Promise<{ records: ImageRecord[]; warnings: ListingWarning[] }> {
    const records: ImageRecord[] = [];
    const warnings: ListingWarning[] = [];
    await readListing(chunked(data, chunk), 'f', (r) => records.push(r), (w) => warnings.push(w));
    return { records, warnings };
  }

  it('short, binary and 1 MB lines in a text listing', async () => {
    const good = (n: number): string => ['IMAGE', `ami-0000000${n}`, `b/${n}.manifest.xml`, '1', 'available', 'public', 'i386', 'machine', 'aki-407d9529', '', '', 'instance-store', 'paravirtual', 'xen'].join('\t');
    const data = Buffer.concat([
      Buffer.from(`${good(1)}\n`),
      Buffer.from('IMAGE\tami-12345678\tlocation\n'), // line 2: short
      Buffer.from([0x49, 0x4d, 0x00, 0xff, 0xfe, 0x0a]), // line 3: binary
      Buffer.from(`${good(2)}\n`),
      Buffer.from(`IMAGE\t${'x'.repeat(1 << 20)}\n`), // line 5: 1 MB
      Buffer.from(`${good(3)}\n`),
      Buffer.from([0xc3, 0x28, 0x0a]), // line 7: not UTF-8
      Buffer.from('TAG\timage\tami-99999999\tName\tx\n'), // line 8: for another image
      Buffer.from(good(4)), // line 9, no final newline
    ]);
    const { records, warnings } = await read(data, 4096);
    expect(records.map((r) => [r.id, r.line])).toEqual([['ami-00000001', 1], ['ami-00000002', 4], ['ami-00000003', 6], ['ami-00000004', 9]]);
    expect(warnings.map((w) => w.line)).toEqual([2, 3, 5, 7, 8]);
    expect(warnings[0]!.message).toMatch(/short IMAGE line/);
    expect(warnings[1]!.message).toMatch(/binary/);
    expect(warnings[2]!.message).toMatch(/1048582 bytes is too long/);
    expect(warnings[3]!.message).toMatch(/binary/);
  });

  it('an IMAGE line with no id, or without public/private, is not taken', async () => {
    const { records, warnings } = await read('IMAGE\tnot-an-id\tl\to\ts\tpublic\ti386\tmachine\nIMAGE\tami-12345678\tl\to\ts\tmaybe\ti386\tmachine\nhello\n');
    expect(records).toEqual([]);
    expect(warnings.map((w) => [w.line, w.message.slice(0, 20)])).toEqual([[1, 'IMAGE line with no i'], [2, 'IMAGE line with "may'], [3, 'not an IMAGE, BLOCKD']]);
  });

  it('bad JSON objects are skipped with the line they start on; the rest is read', async () => {
    const data = [
      '{"ImageId": "ami-00000001", "KernelId": "aki-407d9529", "Name": "a \\"quoted\\" {name} \\\\", "Description": "\\\\\\"}"}',
      '{"ImageId": "ami-00000002", "Name": }',
      '{"Images": [{"ImageId": "ami-00000003"}, {"no": "id"}, {"ImageId": 5}]}',
      'garbage',
      '{"ImageId": "ami-00000004"',
    ].join('\n');
    const { records, warnings } = await read(data, 7);
    expect(records.map((r) => [r.id, r.line])).toEqual([['ami-00000001', 1], ['ami-00000003', 3]]);
    expect(records[0]!.name).toBe('a "quoted" {name} \\');
    expect(warnings.map((w) => [w.line, w.message])).toEqual([
      [2, expect.stringMatching(/^bad JSON/)],
      [3, 'a JSON object with no ImageId'],
      [3, 'a JSON object with no ImageId'],
      [4, 'text outside any JSON value'],
      [5, 'the JSON ends in the middle of a value'],
    ]);
  });
});
