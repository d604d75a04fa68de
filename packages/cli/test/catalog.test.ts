import { spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOTES_AKI_COUNTS, listingImages, requireTools, run, tmpDir, writeListing, type TmpDir } from '@amitrans/testkit';
import { binary, cli } from './helpers.js';

let dir: TmpDir;
let text: string;
let json: string;

beforeAll(async () => {
  dir = await tmpDir();
  text = dir.file('all-images.txt');
  json = dir.file('all-images.json');
  await writeListing(text, { form: 'text' });
  await writeListing(json, { form: 'json' });
});
afterAll(async () => {
  await dir.remove();
});

/** The notes' one-liner, run by the shell with the real grep and perl. */
async function perlIds(file: string, aki: string): Promise<string[]> {
  const r = await run('bash', ['-c', `grep ${aki} "$1" | perl -ne 'if (/(ami-.{8}?)/) {print "$1\\n";}'`, 'oneliner', file]);
  return r.stdout.split('\n').filter(Boolean);
}

/** Run the binary with `input` on its stdin. */
function withStdin(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binary(), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    createReadStream(input).pipe(child.stdin);
  });
}

describe('amitrans catalog: the notes\' table', () => {
  it('text and JSON listings print the same table: twelve AKIs, 6101 of 20369', async () => {
    const a = await cli('catalog', text);
    const b = await cli('catalog', json);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    for (const [aki, n] of Object.entries(NOTES_AKI_COUNTS)) expect(a.stdout).toMatch(new RegExp(`^${aki} .* ${n}$`, 'm'));
    expect(a.stdout).toMatch(/^aki-825ea7eb +1\.02 +hd0 +x86_64 +us-east-1 +1709$/m);
    expect(a.stdout).toContain('Total pv-grub images: 6101 of 20369');
    const j = JSON.parse((await cli('catalog', json, '--json')).stdout) as { total: number; pvgrub: number; byAki: { aki: string; count: number }[] };
    expect([j.total, j.pvgrub, j.byAki.length]).toEqual([20369, 6101, 12]);
  });

  it('the listing on stdin reads the same', async () => {
    const r = await withStdin(['catalog', '-', '--json'], text);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ total: 20369, pvgrub: 6101 });
  });
});

describe('--ids against the notes\' perl one-liner', () => {
  it('where the AKI is only in the kernel column, the same ids in the same order', async (ctx) => {
    requireTools(ctx, 'perl', 'grep');
    const want = await perlIds(text, 'aki-825ea7eb');
    expect(want).toHaveLength(1709);
    const r = await cli('catalog', text, '--ids', '--aki', 'aki-825ea7eb');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(want);
  });

  it('where names, locations and tags also mention it, grep overcounts and catalog does not', async (ctx) => {
    requireTools(ctx, 'perl', 'grep');
    const mentioned = dir.file('mentions.txt');
    await writeListing(mentioned, { form: 'text', mention: 'aki-825ea7eb' });
    const truth = [...listingImages({ form: 'text', mention: 'aki-825ea7eb' })].filter((g) => g.kernel === 'aki-825ea7eb').map((g) => g.id);
    const perl = await perlIds(mentioned, 'aki-825ea7eb');
    const ours = (await cli('catalog', mentioned, '--ids', '--aki', 'aki-825ea7eb')).stdout.split('\n').filter(Boolean);
    expect(perl.length).toBeGreaterThan(truth.length);
    expect(ours).toEqual(truth);
  });
});

describe('outputs', () => {
  it('--csv: a header and one row per matching image, quoted where needed', async () => {
    const r = await cli('catalog', text, '--csv', '--class', 'pvgrub-hd00');
    const rows = r.stdout.trim().split('\n');
    expect(rows[0]).toBe('id,class,arch,root_device_type,kernel,pvgrub_version,pvgrub_disk,owner,state,public,virtualization,location,snapshot');
    expect(rows).toHaveLength(1 + 168);
    expect(rows.slice(1).every((l) => l.split(',')[1] === 'pvgrub-hd00')).toBe(true);
  });

  it('--worklist: JSON lines of the pv-grub images, written whole under its name', async () => {
    const out = dir.file('work.jsonl');
    const r = await cli('catalog', json, '--worklist', out, '--arch', 'x86_64');
    expect(r.code, r.stderr).toBe(0);
    const lines = (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const want = [...listingImages({ form: 'json' })].filter((g) => g.kind === 'pvgrub' && g.arch === 'x86_64');
    expect(lines.map((l) => l.id)).toEqual(want.map((g) => g.id));
    for (const [l, g] of lines.map((l, i) => [l, want[i]!] as const)) {
      expect(l).toMatchObject({ class: expect.stringMatching(/^pvgrub-hd00?$/), arch: 'x86_64', kernel: g.kernel, targets: ['kvm', 'virtualbox', 'xenserver', 'eucalyptus'] });
      expect(g.rootDeviceType === 'ebs' ? l.snapshot : l.location).toBe(g.rootDeviceType === 'ebs' ? g.snapshot : g.location);
    }
    expect((await readdir(dir.path)).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });
});

describe('mistakes', () => {
  it('malformed lines: warnings with line numbers, the rest counted, exit 0', async () => {
    const bad = dir.file('bad.txt');
    const good = 'IMAGE\tami-12345678\tb/x.manifest.xml\t1\tavailable\tpublic\tx86_64\tmachine\taki-825ea7eb\t\t\tinstance-store\tparavirtual\txen';
    await writeFile(bad, [good, 'IMAGE\tami-1', Buffer.from([0, 1, 2, 0xff]).toString('latin1'), `TAG\timage\tami-12345678\tk\t${'v'.repeat(1 << 20)}`, good.replace('12345678', '87654321')].join('\n'));
    const r = await cli('catalog', bad);
    expect(r.code).toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/bad\.txt: line 2: IMAGE line/),
      expect.stringMatching(/bad\.txt: line 3: binary data/),
      expect.stringMatching(/bad\.txt: line 4: longer than 65536 bytes/),
    ]);
    expect(r.stdout).toContain('Total pv-grub images: 2 of 2');
    expect(r.stdout).toContain('Skipped: 3');
  });

  it('a missing listing exits 1 naming it; bad flags exit 2; nothing is written', async () => {
    const out = dir.file('never.jsonl');
    const missing = await cli('catalog', dir.file('nope.txt'), '--worklist', out);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.txt/);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(out)).toBe(false);
    const badClass = await cli('catalog', text, '--class', 'pvgrub');
    expect([badClass.code, badClass.stderr]).toEqual([2, expect.stringMatching(/--class pvgrub: expected pvgrub-hd0/)]);
    expect((await cli('catalog', text, '--ids', '--csv')).code).toBe(2);
    expect((await readdir(dir.path)).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });
});
