import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TARGETS } from '@amitrans/guest';
import { NOTES_AKIS, requireTools, run, tmpDir, writeListing, type ListingFacts, type TmpDir } from '@amitrans/testkit';
import { runCli } from '../src/index.js';
import { cli, type CliRun } from './helpers.js';

let dir: TmpDir;
let text: string;
let json: string;
let facts: ListingFacts;
beforeAll(async () => {
  dir = await tmpDir();
  text = dir.file('all-images.txt');
  json = dir.file('all-images.json');
  facts = await writeListing(text, { form: 'text' });
  await writeListing(json, { form: 'json' });
});
afterAll(async () => {
  await dir.remove();
});

/** The notes' loop: `grep aki-… /tmp/all-images | perl -ne 'if (/(ami-.{8}?)/) {print "$1\n";}'`. */
async function perlOneLiner(file: string, aki: string): Promise<string> {
  const script = `grep ${aki} "$1" | perl -ne 'if (/(ami-.{8}?)/) {print "$1\\n";}'`;
  return (await run('sh', ['-c', script, 'sh', file])).stdout;
}

/** An independent reading of the kernel column: awk on the tab-separated IMAGE lines (14 fields). */
async function awkKernelColumn(file: string, aki: string): Promise<string> {
  return (await run('awk', ['-F', '\t', `$1 == "IMAGE" && $9 == "${aki}" { print $2 }`, file])).stdout;
}

describe('amitrans catalog: the notes\' table', () => {
  it('counts each pv-grub AKI as the notes do: 6101 of 20369', async () => {
    const r = await cli('catalog', text);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const a of NOTES_AKIS) {
      expect(r.stdout, a.aki).toMatch(new RegExp(`^${a.aki} +${a.version.replace('.', '\\.')} +${a.disk} +${a.arch} +${a.amis}$`, 'm'));
    }
    expect(r.stdout).toContain('Total pv-grub AMIs: 6101 of 20369');
    expect(r.stdout).toContain('Total images: 20369');
    expect(r.stdout).toContain('Lines skipped: 0');
  });

  it('the same listing as describe-images JSON prints the same table', async () => {
    const a = await cli('catalog', text);
    const b = await cli('catalog', json);
    expect(b.code).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    const both = await cli('catalog', text, json, '--json');
    const summary = JSON.parse(both.stdout) as { imagesRead: number; totalPvGrub: number };
    expect(summary).toMatchObject({ imagesRead: 2 * 20369, totalPvGrub: 2 * 6101 });
  });

  it('each per-AKI count equals grep | wc -l, the notes\' loop, when the AKI is only in the kernel column', async (ctx) => {
    requireTools(ctx, 'grep', 'wc');
    const r = await cli('catalog', text, '--json');
    const rows = (JSON.parse(r.stdout) as { akis: { aki: string; images: number }[] }).akis;
    for (const row of rows) {
      const grep = Number((await run('sh', ['-c', `grep ${row.aki} "$1" | wc -l`, 'sh', text])).stdout.trim());
      expect(row.images, row.aki).toBe(grep);
    }
  });
});

describe('amitrans catalog --ids', () => {
  it('--aki aki-825ea7eb prints what the notes\' perl one-liner prints', async (ctx) => {
    requireTools(ctx, 'grep', 'perl');
    const r = await cli('catalog', text, '--ids', '--aki', 'aki-825ea7eb');
    expect(r.code).toBe(0);
    const perl = await perlOneLiner(text, 'aki-825ea7eb');
    expect(perl.split('\n').length - 1).toBe(1709);
    expect(r.stdout).toBe(perl);
    expect(r.stderr).toMatch(/20369 images read, 1709 selected, 1709 pv-grub, 0 line\(s\) skipped/);
  });

  it('where a TAG value or a location also mentions the AKI, the one-liner overcounts and catalog does not', async (ctx) => {
    requireTools(ctx, 'grep', 'perl', 'awk');
    const file = dir.file('mentions.txt');
    const f = await writeListing(file, { form: 'text', mention: 'aki-825ea7eb', mentionEvery: 40 });
    expect(f.mentions).toBeGreaterThan(50);
    const r = await cli('catalog', file, '--ids', '--aki', 'aki-825ea7eb');
    const perl = await perlOneLiner(file, 'aki-825ea7eb');
    const awk = await awkKernelColumn(file, 'aki-825ea7eb');
    expect(perl.split('\n').length - 1).toBe(1709 + f.mentions);
    expect(r.stdout).toBe(awk);
    expect(r.stdout.split('\n').length - 1).toBe(1709);
  });

  it('reads stdin for -, and filters by class, arch, root type and owner', async (ctx) => {
    requireTools(ctx, 'awk');
    let stdout = '';
    let stderr = '';
    const code = await runCli(['catalog', '-', '--ids', '--class', 'pvgrub-hd00', '--arch', 'i386', '--root-type', 'ebs'], {
      stdout: { write: (s: string | Uint8Array) => ((stdout += String(s)), true) },
      stderr: { write: (s: string | Uint8Array) => ((stderr += String(s)), true) },
      stdin: Readable.from([await readFile(text)]),
    });
    expect(code).toBe(0);
    const hd00i386 = ['aki-4c7d9525', 'aki-525ea73b', 'aki-b2aa75db'];
    const awk = (await run('awk', ['-F', '\t', `$1 == "IMAGE" && $12 == "ebs" && (${hd00i386.map((a) => `$9 == "${a}"`).join(' || ')}) { print $2 }`, text])).stdout;
    expect(stdout).toBe(awk);
    expect(stdout.length).toBeGreaterThan(0);
    expect(stderr).toMatch(/line\(s\) skipped/);
    const owner = awk.split('\n')[0]!;
    const ownerId = (await run('awk', ['-F', '\t', `$2 == "${owner}" { print $4 }`, text])).stdout.trim();
    const byOwner = await cli('catalog', text, '--ids', '--owner', ownerId);
    const awkOwner = (await run('awk', ['-F', '\t', `$1 == "IMAGE" && $4 == "${ownerId}" { print $2 }`, text])).stdout;
    expect(byOwner.stdout).toBe(awkOwner);
  });
});

describe('amitrans catalog --csv and --worklist', () => {
  it('--csv: a header and one row per selected image', async (ctx) => {
    requireTools(ctx, 'awk');
    const r = await cli('catalog', json, '--csv', '--class', 'hvm');
    const rows = r.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^id,class,arch,root_device_type,/);
    expect(rows.length - 1).toBe(facts.hvm);
    const awk = (await run('awk', ['-F', '\t', '$1 == "IMAGE" && $13 == "hvm" { n++ } END { print n }', text])).stdout.trim();
    expect(rows.length - 1).toBe(Number(awk));
    expect(rows.slice(1).every((row) => row.split(',')[1] === 'hvm')).toBe(true);
  });

  it('--worklist: JSON lines of the pv-grub images, renamed into place when complete', async () => {
    const out = dir.file('work.jsonl');
    const r = await cli('catalog', text, '--worklist', out, '--class', 'pvgrub-hd0,pvgrub-hd00');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Work list: ${out} (6101 image(s))`);
    const items = (await readFile(out, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(items).toHaveLength(6101);
    for (const item of items) {
      expect(item.class).toMatch(/^pvgrub-hd00?$/);
      // Every target the translator has (the fleet refuses a name it does not know).
      expect(item.targets).toEqual([...TARGETS]);
      if (item.rootDeviceType === 'ebs') expect(item.snapshot).toMatch(/^snap-/);
      else expect(item.location).toMatch(/\.manifest\.xml$/);
    }
    expect((await readdir(dir.path)).filter((n) => n.includes('.tmp'))).toEqual([]);
  });

  it('a failed run leaves no work list and no temporary file', async () => {
    const out = dir.file('never.jsonl');
    const bad = dir.file('not-a-listing.txt');
    await writeFile(bad, 'hello\nworld\n');
    const r = await cli('catalog', bad, '--worklist', out);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no image found in .*not-a-listing\.txt: 2 line\(s\) skipped/);
    expect(existsSync(out)).toBe(false);
    expect((await readdir(dir.path)).filter((n) => n.includes('.tmp'))).toEqual([]);
  });
});

describe('amitrans catalog: bad input and usage', () => {
  it('short, binary and 1 MB lines: warnings with line numbers, counted in the summary', async () => {
    const file = dir.file('malformed.txt');
    const good = (n: number): string => ['IMAGE', `ami-0000000${n}`, `b/${n}.manifest.xml`, '1', 'available', 'public', 'i386', 'machine', 'aki-407d9529', '', '', 'instance-store', 'paravirtual', 'xen'].join('\t');
    await writeFile(file, Buffer.concat([
      Buffer.from(`${good(1)}\nIMAGE\tami-12345678\n`),
      Buffer.from([0x00, 0x01, 0x02, 0xff, 0x0a]),
      Buffer.from(`${'A'.repeat(1 << 20)}\n${good(2)}\n`),
    ]));
    const r: CliRun = await cli('catalog', file);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^amitrans: warning: ${file}:2: short IMAGE line`, 'm'));
    expect(r.stderr).toMatch(new RegExp(`^amitrans: warning: ${file}:3: binary data`, 'm'));
    expect(r.stderr).toMatch(new RegExp(`^amitrans: warning: ${file}:4: line of 1048576 bytes is too long`, 'm'));
    expect(r.stderr).not.toMatch(/at .*\.js|internal error/);
    expect(r.stdout).toContain('Total pv-grub AMIs: 2 of 2');
    expect(r.stdout).toContain('Lines skipped: 3');
  });

  it('mistakes: exit 2 for usage, 1 for a missing file, never a stack trace', async () => {
    const cases: [string[], number, RegExp][] = [
      [['catalog'], 2, /Not enough non-option arguments/],
      [['catalog', text, '--ids', '--csv'], 2, /--ids and --csv cannot be used together/],
      [['catalog', text, '--class', 'pvgrub'], 2, /unknown class "pvgrub"/],
      [['catalog', '-', '-'], 2, /stdin\) can be read only once/],
      [['catalog', text, '--root-type', 'disk'], 2, /Invalid values/],
      [['catalog', dir.file('missing.txt')], 1, /ENOENT.*missing\.txt/],
      [['catalog', dir.path], 1, /is a directory/],
      [['catalog', text, '--kernels', dir.file('nokernels.json')], 1, /ENOENT.*nokernels\.json/],
    ];
    for (const [args, code, message] of cases) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr, args.join(' ')).not.toMatch(/internal error|\n\s+at /);
      expect(r.stdout, args.join(' ')).toBe('');
    }
  });

  it('--kernels classifies an AKI the table lacks, and the table marks it', async () => {
    const kernels = dir.file('kernels.txt');
    await writeFile(kernels, `${['IMAGE', 'aki-0badf00d', 'ec2-public-images-xx/pv-grub-hd0_1.05-x86_64.gz.manifest.xml', 'amazon', 'available', 'public', 'x86_64', 'kernel', '', '', '', 'instance-store', 'paravirtual', 'xen'].join('\t')}\n`);
    const listing = dir.file('unknown-aki.txt');
    await writeFile(listing, `${['IMAGE', 'ami-0000abcd', 'b/x.manifest.xml', '1', 'available', 'public', 'x86_64', 'machine', 'aki-0badf00d', '', '', 'instance-store', 'paravirtual', 'xen'].join('\t')}\n`);
    const before = await cli('catalog', listing, '--csv');
    expect(before.stdout).toContain('ami-0000abcd,aki-kernel,');
    const after = await cli('catalog', listing, '--kernels', kernels);
    expect(after.stdout).toMatch(/^aki-0badf00d \* +1\.05 +hd0 +x86_64 +1$/m);
    expect(after.stdout).toContain('* classified from its name in --kernels');
  });
});
