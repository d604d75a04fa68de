#!/usr/bin/env node
// node scripts/bench-bundle.mjs [--runs N] [--image PATH]
//
// Issue 16's bench: `amitrans bundle` of a 2 GiB ext4 filesystem against the shell
// pipeline it replaces, `tar -cS | pigz | openssl enc -aes-128-cbc | split -b 10M` plus
// sha1sum of the parts, taking turns in the same run. Prints median wall time, CPU time,
// peak RSS and output size of each, and the pipeline's size on a zerofree'd copy (what
// amitrans bundles: free blocks as zeros). Not a test: nothing here asserts.
//
// The default image (built once, cached under .tmp/bench/bundle): a 2 GiB ext4 made by
// mkfs.ext4 -d from /usr/lib/x86_64-linux-gnu, with a 300 MiB file written and deleted
// so that stale data sits in its free blocks, as in a used AMI.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const runs = Number(opt('runs', 3));
const work = join(root, '.tmp/bench/bundle');
mkdirSync(work, { recursive: true });
const bin = join(root, 'packages/cli/dist/amitrans.mjs');
if (!existsSync(bin)) {
  console.error('bench-bundle: build first (npm run build)');
  process.exit(1);
}
for (const tool of ['pigz', 'openssl', 'zerofree', 'mkfs.ext4', 'debugfs', '/usr/bin/time']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`], { env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } }).status !== 0) {
    console.error(`bench-bundle: ${tool} is missing (bash scripts/setup-test-env.sh)`);
    process.exit(1);
  }
}
const sh = (script, o = {}) => execFileSync('bash', ['-o', 'pipefail', '-c', script], { cwd: work, env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` }, stdio: ['ignore', 'pipe', 'pipe'], ...o }).toString();

let image = opt('image', join(work, 'ext4-2g.img'));
if (!existsSync(image)) {
  console.error('bench-bundle: building the 2 GiB ext4 image…');
  sh(`head -c 300M /dev/urandom > stale.bin && mkdir -p src && cp -r /usr/lib/x86_64-linux-gnu src/lib && cp stale.bin src/ &&
      mkfs.ext4 -q -F -d src ${image}.partial 2G && debugfs -w -R 'rm /stale.bin' ${image}.partial && mv ${image}.partial ${image} && rm -rf src stale.bin`);
}
const zeroed = join(work, 'zerofreed.img');
if (!existsSync(zeroed)) {
  copyFileSync(image, zeroed);
  sh(`zerofree ${zeroed}`);
}
if (!existsSync(join(work, 'cloud.crt'))) {
  sh('openssl req -x509 -newkey rsa:2048 -nodes -keyout cloud.key -out cloud.crt -subj /CN=bench -days 30 2>/dev/null');
}

/** Run a shell command under GNU time; wall s, CPU s, peak RSS MiB. */
function timed(script) {
  const out = sh(`/usr/bin/time -f 'TIME %e %U %S %M' bash -o pipefail -c '${script}' 2>&1 >/dev/null | tail -1`);
  const [, e, u, s, m] = /TIME (\S+) (\S+) (\S+) (\d+)/.exec(out) ?? [];
  return { wall: Number(e), cpu: Number(u) + Number(s), rss: Number(m) / 1024 };
}
const dirSize = (d) => readdirSync(d).reduce((a, n) => a + statSync(join(d, n)).size, 0);
const K = '00112233445566778899aabbccddeeff';
const ours = () => {
  rmSync(join(work, 'ours'), { recursive: true, force: true });
  const t = timed(`node ${bin} bundle ${image} ours --user 1 --arch x86_64 --ec2cert cloud.crt`);
  return { ...t, size: dirSize(join(work, 'ours')) };
};
const pipeline = (img) => {
  rmSync(join(work, 'theirs'), { recursive: true, force: true });
  mkdirSync(join(work, 'theirs'));
  const t = timed(`tar -cS -C $(dirname ${img}) $(basename ${img}) | pigz | openssl enc -aes-128-cbc -K ${K} -iv ${K} | split -b 10M - theirs/p. && sha1sum theirs/p.* > /dev/null`);
  return { ...t, size: dirSize(join(work, 'theirs')) };
};

const a = [];
const b = [];
for (let i = 0; i < runs; i++) {
  if (i % 2 === 0) {
    a.push(ours());
    b.push(pipeline(image));
  } else {
    b.push(pipeline(image));
    a.push(ours());
  }
}
const z = pipeline(zeroed);
const median = (xs, k) => xs.map((x) => x[k]).sort((p, q) => p - q)[Math.floor(xs.length / 2)];
const row = (name, xs) => `| ${name} | ${median(xs, 'wall').toFixed(1)} | ${median(xs, 'cpu').toFixed(1)} | ${Math.max(...xs.map((x) => x.rss)).toFixed(0)} | ${(median(xs, 'size') / 2 ** 20).toFixed(1)} |`;
console.log(`bundle of ${image} (${(statSync(image).size / 2 ** 30).toFixed(1)} GiB), ${runs} runs each, taking turns\n`);
console.log('| | wall s | CPU s | peak RSS MiB | bundle MiB |\n| --- | --- | --- | --- | --- |');
console.log(row('amitrans bundle', a));
console.log(row('tar -cS \\| pigz \\| openssl enc \\| split + sha1sum', b));
console.log(row('the same pipeline on a zerofree\'d copy', [z]));
console.log(`\nratio (wall, medians): ${(median(a, 'wall') / median(b, 'wall')).toFixed(2)}x; size vs the zerofree'd pipeline: ${(median(a, 'size') / z.size).toFixed(3)}x`);
rmSync(join(work, 'ours'), { recursive: true, force: true });
rmSync(join(work, 'theirs'), { recursive: true, force: true });
