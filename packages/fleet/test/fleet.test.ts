import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDebianAmi, qemuImgCheck, requireTools, run, runStatus, sha256File, tmpDir, type TmpDir } from '@amitrans/testkit';
import { loadResults, openStore, type FleetTimes, type ImageResult, type Report } from '../src/index.js';
import { buildFleet, type FleetFixtures } from './fixtures.js';
import { runBin, startBin, startRedis, type RedisServer } from './helpers.js';

// Issue 18: the fleet end to end through the amitrans binary, on 25 images made at test
// time: embedded (fleet run) and on BullMQ with three worker processes, one of them killed.
let dir: TmpDir;
let fx: FleetFixtures;
const ARTIFACTS = join(import.meta.dirname, '../../../.tmp/artifacts');

beforeAll(async () => {
  dir = await tmpDir('amitrans-fleet-');
  fx = await buildFleet(dir.path, 24, { bigMiB: 64 });
  // The user's and the cloud's certificates, for EMI bundles.
  await Promise.all(['user', 'cloud'].map((n) =>
    run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', dir.file(`${n}.key`), '-out', dir.file(`${n}.crt`), '-subj', `/CN=${n}`, '-days', '2'])));
}, 300_000);

/** The flags that make eucalyptus an EMI bundle. */
const bundleFlags = (): string[] => ['--user', '123456789012', '--ec2cert', dir.file('cloud.crt'), '--cert', dir.file('user.crt'), '--privatekey', dir.file('user.key')];

/** Part files an EMI manifest names. */
function manifestParts(xml: string): string[] {
  return [...xml.matchAll(/<filename>([^<]+)<\/filename>/g)].map((m) => m[1]!);
}
afterAll(async () => {
  await dir?.remove();
});

/** Every image's outcome per target, with the words its reason must carry. */
function checkOutcomes(results: Map<string, ImageResult>): void {
  expect([...results.keys()].sort()).toEqual(fx.expected.map((e) => e.id).sort());
  for (const e of fx.expected) {
    const r = results.get(e.id)!;
    expect(r.targets.map((t) => t.target), e.id).toEqual(e.targets);
    for (const t of r.targets) {
      expect(t.outcome, `${e.id} ${t.target}`).toBe(e.outcomes[t.target]);
      if (t.outcome === 'wont') expect(t.reasons.join(' '), e.id).toContain(e.why);
      if (t.outcome === 'error' && e.why) expect(t.error!.message, e.id).toContain(e.why);
      if (t.outcome === 'works' || t.outcome === 'tweaks') expect(t.output, `${e.id} ${t.target}`).toBeDefined();
    }
    const failed = Object.values(e.outcomes).includes('error');
    expect(r.status, e.id).toBe(failed ? 'failed' : 'done');
  }
}

/** Outputs are whole: the record's sha256 is the file's, and the container passes its checker. */
async function checkOutputs(out: string, results: Map<string, ImageResult>): Promise<void> {
  for (const r of results.values()) {
    for (const t of r.targets) {
      if (!t.output) continue;
      const file = join(out, t.output.key);
      expect(await sha256File(file), t.output.key).toBe(t.output.sha256);
      if (t.output.format === 'qcow2') expect((await qemuImgCheck(file, 'qcow2')).code, t.output.key).toBe(0);
      if (t.output.format === 'raw') expect((await runStatus('e2fsck', ['-fn', file])).code, t.output.key).toBe(0);
    }
  }
}

/**
 * A process's account of the fleet's own time: every kind there, none negative, and what the
 * images' records say the fleet cost them is part of it (up to each record's rounding).
 */
function checkTimes(t: FleetTimes, records: readonly ImageResult[]): void {
  expect(Object.keys(t).sort()).toEqual(['idle', 'journal', 'queue', 'report', 'startup', 'store']);
  expect(Object.values(t).every((x) => x >= 0)).toBe(true);
  expect(t.startup).toBeGreaterThan(0);
  const slack = 0.001 * records.length;
  expect(t.store).toBeGreaterThanOrEqual(records.reduce((s, r) => s + r.overhead!.store, 0) - slack);
  // The images' journal events and change reports, and besides them the records' own writes.
  expect(t.journal).toBeGreaterThanOrEqual(records.reduce((s, r) => s + r.overhead!.journal, 0) - slack);
  if (records.length > 0) expect(t.journal).toBeGreaterThan(0);
}

function deliveries(journal: string): Record<string, unknown>[] {
  return journal.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.event === 'delivered');
}

describe('fleet run: the embedded pool', () => {
  const out = (): string => join(dir.path, 'out');
  const args = (...more: string[]): string[] => ['fleet', 'run', fx.worklist, '--out', out(), '--json', '--concurrency', '2', '--no-clean', ...more];

  it('translates every image: outcomes and reasons as each fixture was made, whole outputs, timed stages', async (ctx) => {
    requireTools(ctx, 'qemu-img', 'e2fsck');
    const r = await runBin(args());
    expect(r.stderr).toBe('');
    // Some images failed (corrupt, missing, a refused translation): exit 1, the rest delivered.
    expect(r.code).toBe(1);
    const summary = JSON.parse(r.stdout) as { run: { total: number; processed: number; failed: number; times: FleetTimes }; totals: Report['totals'] };
    expect(summary.run).toMatchObject({ total: 25, processed: 25 });
    const results = await loadResults(openStore(out()));
    // No queue here; the report was built and written; the records' share is in the run's account.
    checkTimes(summary.run.times, [...results.values()]);
    expect(summary.run.times).toMatchObject({ queue: 0 });
    expect(summary.run.times.report).toBeGreaterThan(0);
    checkOutcomes(results);
    await checkOutputs(out(), results);
    const amzn = results.get('ami-amzn-00')!;
    expect(amzn.stages.map((s) => s.name)).toEqual(['open', 'inspect', 'verdict', 'translate:xenserver', 'deliver:xenserver', 'translate:eucalyptus', 'deliver:eucalyptus', 'record']);
    expect(amzn.stages.every((s) => s.ok && s.seconds >= 0)).toBe(true);
    expect(amzn.guest).toMatchObject({ distro: 'amzn', arch: 'x86_64' });
    expect(amzn.targets[1]!.changes!.length).toBeGreaterThan(0);
    const missing = results.get('ami-missing-01')!;
    expect(missing.stages.map((s) => [s.name, s.ok])).toEqual([['open', false], ['record', true]]);
    // Each output was delivered once.
    const d = deliveries(await readFile(join(out(), 'journal.jsonl'), 'utf8'));
    expect(new Set(d.map((e) => e.key)).size).toBe(d.length);
  }, 600_000);

  it('a rerun skips every image; --retry-failed redoes the failed ones only and delivers nothing twice', async () => {
    const before = deliveries(await readFile(join(out(), 'journal.jsonl'), 'utf8')).length;
    const again = await runBin(args());
    expect(JSON.parse(again.stdout).run).toMatchObject({ total: 25, processed: 0, skipped: 25 });
    const retry = await runBin(args('--retry-failed'));
    const failed = fx.expected.filter((e) => Object.values(e.outcomes).includes('error')).length;
    expect(JSON.parse(retry.stdout).run).toMatchObject({ processed: failed, skipped: 25 - failed });
    expect(deliveries(await readFile(join(out(), 'journal.jsonl'), 'utf8')).length).toBe(before);
    const results = await loadResults(openStore(out()));
    checkOutcomes(results);
    const two = results.get('ami-centos5two-04')!;
    expect(two.attempt).toBe(2);
    expect(two.targets.find((t) => t.target === 'eucalyptus')!.output!.delivery).toBe('existing');
  }, 600_000);

  it('report.html in headless Chromium: no console error, the counts in the DOM are report.json\'s, the filter works, a screenshot', async (ctx) => {
    requireTools(ctx, 'chromium');
    const report = JSON.parse(await readFile(join(out(), 'report.json'), 'utf8')) as Report;
    const page = `file://${join(out(), 'report.html')}`;
    const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--enable-logging=stderr', '--v=0', '--virtual-time-budget=5000'];
    const dom = await runStatus('chromium', [...flags, '--dump-dom', page]);
    expect(dom.code).toBe(0);
    expect(dom.stderr).not.toMatch(/Uncaught|CONSOLE\(\d+\).*error|:ERROR:CONSOLE/i);
    expect(dom.stdout).toMatch(/<body[^>]*data-ready="yes"/);
    for (const t of report.targets) {
      for (const o of ['works', 'tweaks', 'wont', 'error'] as const) {
        const m = new RegExp(`data-target="${t}" data-outcome="${o}">(\\d+)<`).exec(dom.stdout);
        expect(Number(m?.[1]), `${t} ${o}`).toBe(report.byTarget[t]![o]);
      }
    }
    expect(report.totals).toEqual({ images: 25, done: 19, failed: 6 });
    expect(dom.stdout.match(/<tr data-id=/g)).toHaveLength(25);
    expect(dom.stdout).toContain('id="shown">25<');
    // A filter in the address: only images with a "won't" outcome stay shown.
    const wont = report.images.filter((i) => Object.values(i.targets).some((x) => x.outcome === 'wont')).length;
    expect(wont).toBeGreaterThan(0);
    const filtered = await runStatus('chromium', [...flags, '--dump-dom', `${page}#q=wont`]);
    expect(filtered.stdout).toContain(`id="shown">${wont}<`);
    expect(filtered.stdout.match(/<tr data-id="[^"]*" data-status="[^"]*" class="hidden"/g)).toHaveLength(25 - wont);
    await mkdir(ARTIFACTS, { recursive: true });
    const png = join(ARTIFACTS, 'fleet-report.png');
    const shot = await runStatus('chromium', [...flags, '--window-size=1280,2400', `--screenshot=${png}`, page]);
    expect(shot.code).toBe(0);
    expect((await readFile(png)).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  }, 120_000);
});

describe('fleet on BullMQ: submit, three workers, status', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    if (process.env.CI || (await runStatus('sh', ['-c', 'command -v redis-server'])).code === 0) redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.close();
  });

  it('every image done exactly once; a worker SIGKILLed mid-image: its image completes on another, whole; the same results as embedded', async (ctx) => {
    requireTools(ctx, 'redis-server', 'qemu-img');
    const out = join(dir.path, 'queued');
    const queue = ['--queue', redis.url];
    const submit = await runBin(['fleet', 'submit', fx.worklist, ...queue, '--out', out, '--no-clean', '--json']);
    expect(submit.stderr).toBe('');
    expect(JSON.parse(submit.stdout)).toMatchObject({ images: 25, added: 25, existing: 0 });
    const submitted = (JSON.parse(submit.stdout) as { times: FleetTimes }).times;
    expect(submitted.queue).toBeGreaterThan(0);
    expect(submitted.startup).toBeGreaterThan(0);
    const twice = await runBin(['fleet', 'submit', fx.worklist, ...queue, '--out', out, '--no-clean', '--json']);
    expect(JSON.parse(twice.stdout)).toMatchObject({ added: 0, existing: 25 });
    const waiting = JSON.parse((await runBin(['fleet', 'status', ...queue, '--json'])).stdout) as { counts: Record<string, number> };
    expect(waiting.counts.waiting).toBe(25);

    const tmp = join(dir.path, 'worker-tmp');
    const workers = [0, 1, 2].map(() => startBin(['fleet', 'worker', ...queue, '--json', '--until-empty', '--lock-seconds', '6', '--stalled-seconds', '2'], { AMITRANS_TMPDIR: tmp }));
    // Kill the worker that takes the big image, a moment after it starts it.
    let chosen = false;
    const victim = await new Promise<number>((resolve) => {
      workers.forEach((w, n) => w.onLine((l) => {
        if (!chosen && l.includes('"event":"start"') && l.includes('"ami-big-kvm"')) {
          chosen = true;
          setTimeout(() => {
            w.child.kill('SIGKILL');
            resolve(n);
          }, 800);
        }
      }));
    });
    const ends = await Promise.all(workers.map((w) => w.done));
    expect(ends[victim]!.signal).toBe('SIGKILL');
    expect(workers[victim]!.lines.some((l) => l.includes('"event":"end"') && l.includes('ami-big-kvm'))).toBe(false);
    const victimPid = workers[victim]!.child.pid!;
    ends.forEach((e, n) => n !== victim && expect([e.code, e.signal, e.stderr]).toEqual([0, null, '']));

    const results = await loadResults(openStore(out));
    // Each surviving worker's account holds the records it wrote, and its lanes fetched jobs from the queue.
    workers.forEach((w, n) => {
      if (n === victim) return;
      const exit = JSON.parse(w.lines.find((l) => l.includes('"event":"exit"'))!) as { worker: string; processed: number; times: FleetTimes };
      checkTimes(exit.times, [...results.values()].filter((r) => r.worker === exit.worker));
      if (exit.processed > 0) expect(exit.times.queue).toBeGreaterThan(0);
    });
    checkOutcomes(results);
    await checkOutputs(out, results);
    const big = results.get('ami-big-kvm')!;
    expect(big.worker.endsWith(`:${victimPid}`)).toBe(false);
    expect(big.targets[0]!.output!.delivery).toBe('new');
    // At least once, yet no output was delivered twice: every key has one 'delivered' event.
    const d = deliveries(await readFile(join(out, 'journal.jsonl'), 'utf8'));
    expect(new Set(d.map((e) => e.key)).size).toBe(d.length);
    expect(d.filter((e) => e.id === 'ami-big-kvm')).toHaveLength(1);
    // The same outcomes and reasons as the embedded run.
    const embedded = await loadResults(openStore(join(dir.path, 'out')));
    for (const [id, r] of results) {
      const e = embedded.get(id)!;
      if (id === 'ami-big-kvm' || !e) continue;
      expect(r.targets.map((t) => [t.target, t.outcome, t.reasons, t.tweaks]), id).toEqual(e.targets.map((t) => [t.target, t.outcome, t.reasons, t.tweaks]));
    }
    const status = JSON.parse((await runBin(['fleet', 'status', ...queue, '--json'])).stdout) as { counts: Record<string, number>; active: unknown[] };
    expect(status.counts).toMatchObject({ completed: 25, active: 0, waiting: 0, failed: 0 });
    // The report from the stored records.
    const rep = await runBin(['fleet', 'report', '--out', out, '--json']);
    expect((JSON.parse(rep.stdout) as Report).totals).toEqual({ images: 25, done: 19, failed: 6 });
    expect((JSON.parse(rep.stdout) as { times: FleetTimes }).times.report).toBeGreaterThan(0);
    // Submitting the finished list again adds nothing, so nothing is redone.
    const after = await runBin(['fleet', 'submit', fx.worklist, ...queue, '--out', out, '--no-clean', '--json']);
    expect(JSON.parse(after.stdout)).toMatchObject({ added: 0, existing: 25 });
    expect((JSON.parse((await runBin(['fleet', 'status', ...queue, '--json'])).stdout) as { counts: Record<string, number> }).counts).toMatchObject({ waiting: 0, active: 0 });
  }, 600_000);

  it('SIGTERM gives the running image back to the queue, half-done work rolled back; a job past its timeout is retried, then recorded as failed', async (ctx) => {
    requireTools(ctx, 'redis-server');
    const list = join(dir.path, 'big.jsonl');
    await writeFile(list, `${(await readFile(fx.worklist, 'utf8')).split('\n').filter((l) => l.includes('ami-big-kvm')).join('\n')}\n`);
    const tmp = join(dir.path, 'term-tmp');
    const term = ['--queue', redis.url, '--queue-name', 'term'];
    const out = join(dir.path, 'term');
    await runBin(['fleet', 'submit', list, ...term, '--out', out, '--json']);
    await mkdir(tmp, { recursive: true });
    const w = startBin(['fleet', 'worker', ...term, '--json'], { AMITRANS_TMPDIR: tmp });
    // Terminate it while the translation is being written (its staging file exists).
    const staging = async (): Promise<boolean> => (await readdir(tmp, { recursive: true })).some((f) => f.endsWith('.qcow2') || f.includes('.partial'));
    for (let i = 0; i < 600 && !(await staging()); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await staging()).toBe(true);
    w.child.kill('SIGTERM');
    expect((await w.done).code).toBe(143);
    expect((await readdir(out, { recursive: true }).catch(() => [])).filter((f) => f.includes('images/') || f.includes('.partial') || f.includes('results/'))).toEqual([]);
    expect(await readdir(tmp)).toEqual([]);
    const back = JSON.parse((await runBin(['fleet', 'status', ...term, '--json'])).stdout) as { counts: Record<string, number> };
    expect(back.counts).toMatchObject({ active: 0, completed: 0, failed: 0 });
    expect(back.counts.waiting! + back.counts.delayed!).toBe(1);
    const next = await runBin(['fleet', 'worker', ...term, '--until-empty', '--json', '--stalled-seconds', '1']);
    expect(next.code, next.stderr).toBe(0);
    const rec = (await loadResults(openStore(out))).get('ami-big-kvm')!;
    expect(rec).toMatchObject({ status: 'done', attempt: 2 });
    expect(rec.targets[0]!.output!.delivery).toBe('new');

    const slow = ['--queue', redis.url, '--queue-name', 'slow'];
    const out2 = join(dir.path, 'slow');
    // 50 ms: the timer fires while the image is opened or inspected, however fast the machine,
    // so the next stage's check abandons the try before anything is delivered.
    expect((await runBin(['fleet', 'submit', list, ...slow, '--out', out2, '--timeout', '0.05', '--attempts', '2', '--json'])).code).toBe(0);
    const worker = await runBin(['fleet', 'worker', ...slow, '--until-empty', '--json']);
    expect(worker.stdout).toContain('"event":"retry"');
    const failed = (await loadResults(openStore(out2))).get('ami-big-kvm')!;
    expect(failed).toMatchObject({ status: 'failed', attempt: 2, error: { code: 'E_TIMEOUT', transient: false } });
    expect(failed.targets[0]!.outcome).toBe('error');
    expect(await readdir(join(out2, 'images')).catch(() => [])).toEqual([]);
  }, 300_000);
});

describe('fleet run: eucalyptus as an EMI bundle', () => {
  it('with bundle credentials: the EMI bundle with its EKI and ERI, manifests after parts, the register commands in the record and the report; a file when asked for', async (ctx) => {
    requireTools(ctx, 'e2fsck', 'openssl');
    const line = (await readFile(fx.worklist, 'utf8')).split('\n').find((l) => l.includes('ami-amzn-00'))!;
    const list = join(dir.path, 'emi.jsonl');
    await writeFile(list, `${JSON.stringify({ ...(JSON.parse(line) as object), targets: ['eucalyptus'] })}\n`);
    const out = join(dir.path, 'emi');
    const r = await runBin(['fleet', 'run', list, '--out', out, '--json', '--no-clean', ...bundleFlags()]);
    expect(r.code, r.stderr).toBe(0);
    const rec = (await loadResults(openStore(out))).get('ami-amzn-00')!;
    expect(rec.stages.map((s) => s.name)).toEqual(['open', 'inspect', 'verdict', 'translate:eucalyptus', 'deliver:eucalyptus', 'record']);
    const o = rec.targets[0]!.output!;
    expect(o).toMatchObject({ format: 'bundle', key: 'images/ami-amzn-00/eucalyptus-bundle/ami-amzn-00.manifest.xml', delivery: 'new' });
    const manifest = join(out, o.key);
    expect(await sha256File(manifest)).toBe(o.sha256);
    const files = await readdir(dirname(manifest));
    expect(files).toEqual(expect.arrayContaining([...manifestParts(await readFile(manifest, 'latin1')), basename(o.bundle!.kernel), basename(o.bundle!.ramdisk)]));
    expect(files.filter((f) => f.includes('.partial'))).toEqual([]);
    expect(await readFile(join(out, o.bundle!.kernel), 'latin1')).toContain('<kernel_id>true</kernel_id>');
    expect(await readFile(join(out, o.bundle!.ramdisk), 'latin1')).toContain('<ramdisk_id>true</ramdisk_id>');
    // The EMI opens with the user's key into the translated filesystem, which e2fsck finds clean.
    const u = await runBin(['unbundle', manifest, dir.file('emi.img'), '-k', dir.file('user.key'), '-c', dir.file('user.crt')]);
    expect(u.code, u.stderr).toBe(0);
    expect((await runStatus('e2fsck', ['-fn', dir.file('emi.img')])).code).toBe(0);
    expect(o.bundle!.register.filter((c) => c.startsWith('euca-register'))).toHaveLength(3);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    expect(report.images[0]!.targets.eucalyptus!.register).toEqual(o.bundle!.register);
    expect(await readFile(join(out, 'report.html'), 'utf8')).toContain('euca-register');
    // Asked for a file, the same credentials give the raw disk as without them.
    const raw = join(dir.path, 'emi-raw');
    const f = await runBin(['fleet', 'run', list, '--out', raw, '--json', '--no-clean', '--formats', 'eucalyptus=raw', ...bundleFlags()]);
    expect(f.code, f.stderr).toBe(0);
    expect((await loadResults(openStore(raw))).get('ami-amzn-00')!.targets[0]!.output).toMatchObject({ format: 'raw', key: 'images/ami-amzn-00/ami-amzn-00-eucalyptus.img' });
  }, 300_000);
});

describe('fleet run to s3://', () => {
  it('outputs, records and the report land in the bucket; boto3 reads the same sha256', async (ctx) => {
    requireTools(ctx, 'python3');
    const { startS3, boto3 } = await import('@amitrans/testkit');
    const s3 = await startS3('fleet-bkt');
    try {
      // Xen targets only (vhd, a few MiB): s3rver stores every byte, and raw outputs would only cost time.
      const lines = (await readFile(fx.worklist, 'utf8')).trim().split('\n').filter((l) => /ami-(amzn-00|amzn-05|centos5xen-02|missing)/.test(l))
        .map((l) => JSON.stringify({ ...(JSON.parse(l) as object), targets: l.includes('missing') ? ['kvm'] : l.includes('amzn-00') ? ['xenserver', 'eucalyptus'] : ['xenserver'] }));
      const list = join(dir.path, 's3-list.jsonl');
      await writeFile(list, `${lines.join('\n')}\n`);
      const where = `s3://${s3.bucket}/fleet`;
      // With the bundle credentials eucalyptus is an EMI bundle, uploaded to the bucket with its EKI and ERI.
      const r = await runBin(['fleet', 'run', list, '--out', where, '--endpoint-url', s3.endpoint, '--json', '--no-clean', ...bundleFlags()], s3.env);
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout).run).toMatchObject({ total: 4, processed: 4, done: 3, failed: 1 });
      const keys = await boto3.keys(s3);
      expect(keys).toEqual(expect.arrayContaining(['fleet/report.html', 'fleet/report.json', 'fleet/results/ami-amzn-00.json', 'fleet/images/ami-amzn-00/ami-amzn-00-xenserver.vhd']));
      const saved = { ...process.env };
      Object.assign(process.env, s3.env);
      ctx.onTestFinished(() => {
        for (const k of Object.keys(s3.env)) if (saved[k] === undefined) delete process.env[k];
        Object.assign(process.env, saved);
      });
      const results = await loadResults(openStore(where, { endpoint: s3.endpoint }));
      for (const t of results.get('ami-amzn-00')!.targets) {
        expect(await boto3.sha256(s3, `fleet/${t.output!.key}`)).toEqual({ sha256: t.output!.sha256, size: t.output!.size });
      }
      const emi = results.get('ami-amzn-00')!.targets.find((t) => t.target === 'eucalyptus')!.output!;
      expect(emi).toMatchObject({ format: 'bundle', key: 'images/ami-amzn-00/eucalyptus-bundle/ami-amzn-00.manifest.xml' });
      const bundleDir = 'fleet/images/ami-amzn-00/eucalyptus-bundle/';
      await boto3.get(s3, `fleet/${emi.key}`, dir.file('s3-emi.manifest.xml'));
      const parts = manifestParts(await readFile(dir.file('s3-emi.manifest.xml'), 'latin1'));
      expect(parts.length).toBeGreaterThan(0);
      expect(keys).toEqual(expect.arrayContaining([...parts.map((p) => `${bundleDir}${p}`), `fleet/${emi.bundle!.kernel}`, `fleet/${emi.bundle!.ramdisk}`]));
      // Uploaded, so the register commands name the bucket's manifests.
      expect(emi.bundle!.register.filter((c) => c.startsWith('euca-register')).map((c) => c.split(' ')[1]))
        .toEqual([`${s3.bucket}/${emi.bundle!.kernel.replace('images/', 'fleet/images/')}`, `${s3.bucket}/${emi.bundle!.ramdisk.replace('images/', 'fleet/images/')}`, `${s3.bucket}/fleet/${emi.key}`]);
      const again = await runBin(['fleet', 'run', list, '--out', where, '--endpoint-url', s3.endpoint, '--json'], s3.env);
      expect(JSON.parse(again.stdout).run).toMatchObject({ processed: 0, skipped: 4 });
    } finally {
      await s3.close();
    }
  }, 300_000);
});

describe('fleet run: Ctrl-C, progress, verify', () => {
  it('SIGINT in the middle: exit 130, nothing half-written, no temporary left; the rerun finishes the rest, with progress on stderr', async () => {
    const out = join(dir.path, 'interrupted');
    const tmp = join(dir.path, 'interrupted-tmp');
    await mkdir(tmp, { recursive: true });
    const lines = (await readFile(fx.worklist, 'utf8')).trim().split('\n').filter((l) => /ami-(amzn|ubuntu)-/.test(l)).slice(0, 6);
    const list = join(dir.path, 'interrupted.jsonl');
    await writeFile(list, `${lines.join('\n')}\n`);
    const run = startBin(['fleet', 'run', list, '--out', out, '--concurrency', '1', '--no-clean'], { AMITRANS_TMPDIR: tmp });
    // Once the first image is recorded, the second is on its way: interrupt it there.
    for (let i = 0; i < 600 && (await readdir(join(out, 'results')).catch(() => [])).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 300));
    run.child.kill('SIGINT');
    const end = await run.done;
    expect(end.code).toBe(130);
    const files = await readdir(out, { recursive: true });
    expect(files.filter((f) => f.includes('.partial'))).toEqual([]);
    expect(await readdir(tmp)).toEqual([]);
    const recorded = (await readdir(join(out, 'results'))).length;
    expect(recorded).toBeGreaterThan(0);
    expect(recorded).toBeLessThan(6);
    const again = await runBin(['fleet', 'run', list, '--out', out, '--concurrency', '1', '--no-clean', '-p'], { AMITRANS_TMPDIR: tmp });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`6 images: ${6 - recorded} processed now (${6 - recorded} done, 0 failed), ${recorded} done before`);
    expect(again.stderr).toMatch(/fleet: \d+\/6 \(0 failed\), \d running, [\d.]+ images\/min/);
    const results = await loadResults(openStore(out));
    expect(results.size).toBe(6);
    await checkOutputs(out, results);
  }, 300_000);

  it('--verify boots each output the way its target would: milestones and time to login in the record and the report', async (ctx) => {
    requireTools(ctx, 'qemu-system-x86_64');
    const ami = join(dir.path, 'debian.img');
    await buildDebianAmi(ctx, ami);
    const list = join(dir.path, 'verify.jsonl');
    await writeFile(list, `${JSON.stringify({ id: 'ami-debian-01', source: ami, targets: ['kvm'] })}\n`);
    const out = join(dir.path, 'verified');
    const r = await runBin(['fleet', 'run', list, '--out', out, '--verify', '--verify-expect', 'AMITRANS-BOOT-OK kernel=', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rec = (await loadResults(openStore(out))).get('ami-debian-01')!;
    expect(rec.stages.map((s) => s.name)).toEqual(['open', 'inspect', 'verdict', 'translate:kvm', 'deliver:kvm', 'verify:kvm', 'record']);
    const v = rec.targets[0]!.verify!;
    expect(v.result).toBe('booted');
    expect(v.milestones.map((m) => m.name)).toEqual(expect.arrayContaining(['bootloader', 'kernel', 'expected']));
    expect(v.login).toBeGreaterThan(0);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    expect(report.verify).toMatchObject({ booted: 1, failed: 0, loginSeconds: { median: v.login, max: v.login } });
    expect(await readFile(join(out, 'report.html'), 'utf8')).toContain('data-verify="booted">1<');
  }, 300_000);
});
