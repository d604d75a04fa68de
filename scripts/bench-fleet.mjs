#!/usr/bin/env node
// node scripts/bench-fleet.mjs [--images 24] [--lanes 2]
//
// Fleet throughput (issue 18): `--images` copies of scripts/make-debian-ami.sh's AMI (Debian's
// cloud kernel and modules, busybox initrd; ~64 MiB filesystem), each its own image of the
// work list, through inspect + translate (kvm, qcow2) + deliver, twice: embedded
// (`fleet run --concurrency LANES`) and on BullMQ (redis-server on a free 127.0.0.1 port,
// `fleet submit`, LANES `fleet worker --until-empty` processes), after the baseline: the same
// translations with the CLI, one `amitrans translate` process per image, LANES at a time.
// Prints images per minute and the fleet's overhead over that baseline (wall time; lane time,
// LANES x wall, against the sum of the CLI processes' times and against the sum of their
// translations alone, without process start: the issue's "under 5 % of the sum of the
// translate times"), and, inside the fleet, the lane time not spent in any pipeline stage
// (process start, queue, journal, records, pool, the report).
// Not a test: nothing here asserts; the numbers go into issue notes.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { loadResults, openStore } from '@amitrans/fleet';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('images', 24);
const LANES = arg('lanes', 2);
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
  cpSync(ami, join(work, `${id}.img`));
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

const pct = (x, base) => `${x >= base ? '+' : ''}${((100 * (x - base)) / base).toFixed(1)} %`;

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
  return { wall: (performance.now() - t0) / 1000, sum: sum(times), translate: sum(translate) };
}

async function measure(label, out, wall, base) {
  const results = [...(await loadResults(openStore(out))).values()];
  const stageSum = results.reduce((s, r) => s + r.stages.reduce((a, x) => a + x.seconds, 0), 0);
  const inside = wall * LANES - stageSum;
  // The pipeline's own time per image (store checks, journal events), from each record's start to its write.
  const perImage = results.reduce((s, r) => s + r.seconds, 0) - stageSum;
  console.log(`| ${label} | ${results.length} | ${wall.toFixed(1)} | ${((results.length / wall) * 60).toFixed(1)} | ${pct(wall, base.wall)} | ${pct(wall * LANES, base.sum)} | ${pct(wall * LANES, base.translate)} | ${stageSum.toFixed(1)} | ${inside.toFixed(1)} (${((100 * inside) / stageSum).toFixed(1)} %) | ${perImage.toFixed(2)} (${((100 * perImage) / stageSum).toFixed(2)} %) |`);
}

console.log(`\n${N} images, ${LANES} lanes\n`);
console.log('| mode | images | wall s | images/min | wall over the CLI\'s | lanes x wall over the CLI processes\' sum | lanes x wall over the CLI translations\' sum | sum of stages s | lane time outside stages s | of it, inside the images\' pipelines s |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');

settle();
const base = await cliBaseline();
console.log(`| CLI: amitrans translate per image, ${LANES} at a time | ${N} | ${base.wall.toFixed(1)} | ${((N / base.wall) * 60).toFixed(1)} | | sum ${base.sum.toFixed(1)} s | sum ${base.translate.toFixed(1)} s | | | |`);

settle();
let t = performance.now();
const embedded = join(work, 'embedded');
await run(['fleet', 'run', list, '--out', embedded, '--concurrency', String(LANES), '--no-clean', '--json']);
await measure('embedded (fleet run)', embedded, (performance.now() - t) / 1000, base);

const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
try {
  const queue = ['--queue', `redis://127.0.0.1:${port}`];
  const queued = join(work, 'queued');
  settle();
  t = performance.now();
  await run(['fleet', 'submit', list, ...queue, '--out', queued, '--no-clean', '--json']);
  await Promise.all(Array.from({ length: LANES }, () => run(['fleet', 'worker', ...queue, '--until-empty', '--json'])));
  await run(['fleet', 'report', '--out', queued, '--json']);
  await measure(`BullMQ (${LANES} workers)`, queued, (performance.now() - t) / 1000, base);
} finally {
  redis.kill('SIGTERM');
}
