#!/usr/bin/env node
// node scripts/bench-fleet.mjs [--images 24] [--lanes 2]
//
// Fleet throughput (issue 18): `--images` copies of scripts/make-debian-ami.sh's AMI (Debian's
// cloud kernel and modules, busybox initrd; ~64 MiB filesystem), each its own image of the
// work list, through inspect + translate (kvm, qcow2) + deliver, twice: embedded
// (`fleet run --concurrency LANES`) and on BullMQ (redis-server on a free 127.0.0.1 port,
// `fleet submit`, LANES `fleet worker --until-empty` processes). Prints images per minute and
// the fleet's own overhead: lane time not spent in any pipeline stage (queue, journal,
// records, pool, the report), against the sum of the translate times. Not a test: nothing
// here asserts; the numbers go into issue notes.
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

function run(args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

async function measure(label, out, wall) {
  const results = [...(await loadResults(openStore(out))).values()];
  const stageSum = results.reduce((s, r) => s + r.stages.reduce((a, x) => a + x.seconds, 0), 0);
  const translate = results.reduce((s, r) => s + r.stages.filter((x) => x.name.startsWith('translate:')).reduce((a, x) => a + x.seconds, 0), 0);
  const overhead = wall * LANES - stageSum;
  console.log(`| ${label} | ${results.length} | ${wall.toFixed(1)} | ${((results.length / wall) * 60).toFixed(1)} | ${translate.toFixed(1)} | ${stageSum.toFixed(1)} | ${overhead.toFixed(1)} | ${((100 * overhead) / translate).toFixed(1)} % |`);
}

console.log(`\n${N} images, ${LANES} lanes\n`);
console.log('| mode | images | wall s | images/min | sum translate s | sum stages s | overhead s (lanes x wall - stages) | overhead / translate |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');

let t = performance.now();
const embedded = join(work, 'embedded');
await run(['fleet', 'run', list, '--out', embedded, '--concurrency', String(LANES), '--no-clean', '--json']);
await measure('embedded (fleet run)', embedded, (performance.now() - t) / 1000);

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
  t = performance.now();
  await run(['fleet', 'submit', list, ...queue, '--out', queued, '--no-clean', '--json']);
  await Promise.all(Array.from({ length: LANES }, () => run(['fleet', 'worker', ...queue, '--until-empty', '--json'])));
  await run(['fleet', 'report', '--out', queued, '--json']);
  await measure(`BullMQ (${LANES} workers)`, queued, (performance.now() - t) / 1000);
} finally {
  redis.kill('SIGTERM');
}
