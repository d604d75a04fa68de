#!/usr/bin/env node
// node scripts/bench-fleet.mjs [--images 24] [--lanes 2] [--runs 1] [--no-cli]
//
// Fleet throughput (issue 18): `--images` copies of scripts/make-debian-ami.sh's AMI (Debian's
// cloud kernel and modules, busybox initrd; ~64 MiB filesystem), each its own image of the
// work list, through inspect + translate (kvm, qcow2) + deliver, `--runs` times each:
// embedded (`fleet run --concurrency LANES`) and on BullMQ (redis-server on a free 127.0.0.1
// port, `fleet submit`, LANES `fleet worker --until-empty` processes, `fleet report`), after
// the baseline (unless --no-cli): the same translations with the CLI, one `amitrans
// translate` process per image, LANES at a time.
// Per mode: images per minute, the sum of the translate stages (from the result records),
// and the fleet's own time as its processes account for it in their --json (`times`):
// queue, journal and records, store checks, report, their total and its share of the
// translate sum (the issue's "under 5 %"); then, not overhead, the lanes' idle time and the
// processes' start-up, and the lane time (LANES x wall) in no stage and no row (temporary
// directories, closing images, the submit and report processes running on one lane).
// With --runs > 1, a median row per mode. Not a test: nothing here asserts.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { loadResults, openStore } from '@amitrans/fleet';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('images', 24);
const LANES = arg('lanes', 2);
const RUNS = arg('runs', 1);
const CLI = !process.argv.includes('--no-cli');
const root = join(import.meta.dirname, '..');
const work = join(root, '.tmp/bench-fleet');
const bin = join(root, 'packages/cli/dist/main.js');

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const ami = join(work, 'ami.img');
const built = spawnSync('bash', [join(root, 'scripts/make-debian-ami.sh'), ami], { stdio: 'inherit' });
if (built.status !== 0) throw new Error('make-debian-ami.sh failed');
const lines = [];
for (let i = 0; i < N; i++) {
  const id = `ami-bench-${String(i).padStart(2, '0')}`;
  // Sparse copies (~100 MiB each, not 400): full copies of a long list would fill the disk.
  if (spawnSync('cp', ['--sparse=always', ami, join(work, `${id}.img`)]).status !== 0) throw new Error(`copying ${ami} failed`);
  lines.push(JSON.stringify({ id, source: `${id}.img`, targets: ['kvm'] }));
}
const list = join(work, 'worklist.jsonl');
writeFileSync(list, `${lines.join('\n')}\n`);

/** Flush what the copies (or the mode before) wrote, so that no mode pays for another's writeback. */
const settle = () => spawnSync('sync');

function run(args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

/**
 * The baseline: `amitrans translate` of each image, LANES processes at a time; each process
 * timed, and its translation (the `seconds` it reports: open, inspect, translate, write).
 */
async function cliBaseline() {
  const dir = join(work, 'cli');
  mkdirSync(dir, { recursive: true });
  const times = [];
  const translate = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: LANES }, async () => {
    while (next < N) {
      const id = `ami-bench-${String(next++).padStart(2, '0')}`;
      const t1 = performance.now();
      const r = await run(['translate', join(work, `${id}.img`), join(dir, `${id}-kvm.qcow2`), '-t', 'kvm', '--no-clean', '--sha256', '--json']);
      if (r.code !== 0) throw new Error(`translate ${id} exited ${r.code}`);
      times.push((performance.now() - t1) / 1000);
      translate.push(JSON.parse(r.out).seconds);
    }
  }));
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  rmSync(dir, { recursive: true, force: true });
  return { wall: (performance.now() - t0) / 1000, sum: sum(times), translate: sum(translate) };
}

const KINDS = ['queue', 'journal', 'store', 'report', 'idle', 'startup'];
const OVERHEAD = ['queue', 'journal', 'store', 'report'];

/** The `times` of each process's --json (every JSON line that has them), added up. */
function addTimes(total, outs) {
  for (const out of outs) {
    for (const l of out.split('\n').filter(Boolean)) {
      const j = JSON.parse(l);
      const t = j.times ?? j.run?.times;
      if (t) for (const k of KINDS) total[k] += t[k] ?? 0;
    }
  }
  return total;
}

async function measure(out, wall, outs) {
  const results = [...(await loadResults(openStore(out))).values()];
  const stages = results.reduce((s, r) => s + r.stages.reduce((a, x) => a + x.seconds, 0), 0);
  const translate = results.reduce((s, r) => s + r.stages.filter((x) => x.name.startsWith('translate:')).reduce((a, x) => a + x.seconds, 0), 0);
  const t = addTimes(Object.fromEntries(KINDS.map((k) => [k, 0])), outs);
  const overhead = OVERHEAD.reduce((s, k) => s + t[k], 0);
  // The outputs are measured; they go, so that the next mode has the disk space.
  rmSync(join(out, 'images'), { recursive: true, force: true });
  const rest = wall * LANES - stages - KINDS.reduce((s, k) => s + t[k], 0);
  return { images: results.length, wall, rate: (results.length / wall) * 60, translate, ...t, overhead, pct: (100 * overhead) / translate, rest };
}

const f1 = (x) => x.toFixed(1);
const f2 = (x) => x.toFixed(2);
function row(label, m) {
  console.log(`| ${label} | ${m.images} | ${f1(m.wall)} | ${f1(m.rate)} | ${f1(m.translate)} | ${f2(m.queue)} | ${f2(m.journal)} | ${f2(m.store)} | ${f2(m.report)} | ${f2(m.overhead)} | ${f2(m.pct)} % | ${f2(m.idle)} | ${f2(m.startup)} | ${f2(m.rest)} |`);
}
function median(ms) {
  const mid = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  return Object.fromEntries(Object.keys(ms[0]).map((k) => [k, mid(ms.map((m) => m[k]))]));
}

async function embedded(n) {
  settle();
  const out = join(work, `embedded-${n}`);
  const t = performance.now();
  const r = await run(['fleet', 'run', list, '--out', out, '--concurrency', String(LANES), '--no-clean', '--json']);
  return measure(out, (performance.now() - t) / 1000, [r.out]);
}

async function bullmq(n, port) {
  const queue = ['--queue', `redis://127.0.0.1:${port}`, '--queue-name', `bench-${n}`];
  const out = join(work, `queued-${n}`);
  settle();
  const t = performance.now();
  const submit = await run(['fleet', 'submit', list, ...queue, '--out', out, '--no-clean', '--json']);
  const workers = await Promise.all(Array.from({ length: LANES }, () => run(['fleet', 'worker', ...queue, '--until-empty', '--json'])));
  const report = await run(['fleet', 'report', '--out', out, '--json']);
  return measure(out, (performance.now() - t) / 1000, [submit.out, ...workers.map((w) => w.out), report.out]);
}

console.log(`\n${N} images, ${LANES} lanes, ${RUNS} run(s) per mode; load before: ${spawnSync('uptime', { encoding: 'utf8' }).stdout.trim()}\n`);
if (CLI) {
  settle();
  const base = await cliBaseline();
  console.log(`CLI baseline (amitrans translate per image, ${LANES} at a time): ${f1(base.wall)} s wall, ${f1((N / base.wall) * 60)} images/min; processes' sum ${f1(base.sum)} s, their translations' sum ${f1(base.translate)} s\n`);
}
console.log('| mode | images | wall s | images/min | translate sum s | queue s | journal/records s | store checks s | report s | overhead s | overhead / translate | idle s (not overhead) | start-up s (not overhead) | lane time in no stage or row s |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');

const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
try {
  const em = [];
  const bq = [];
  for (let n = 1; n <= RUNS; n++) {
    em.push(await embedded(n));
    row(`embedded (fleet run), run ${n}`, em.at(-1));
    bq.push(await bullmq(n, port));
    row(`BullMQ (${LANES} workers), run ${n}`, bq.at(-1));
  }
  if (RUNS > 1) {
    row('embedded, median', median(em));
    row(`BullMQ (${LANES} workers), median`, median(bq));
  }
} finally {
  redis.kill('SIGTERM');
}
console.log(`\nload after: ${spawnSync('uptime', { encoding: 'utf8' }).stdout.trim()}`);
