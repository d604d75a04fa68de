#!/usr/bin/env node
// The catalog bench (issue 17): a describe-images text listing of about two million lines
// (the notes' us-east-1 mix scaled up), read by `amitrans catalog` and by the notes' own
// method, twelve `grep aki-… FILE | wc -l`, in one run, alternating; the same images as
// JSON read by amitrans too. Prints a Markdown table: median seconds, ratio, peak RSS.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const bin = join(root, 'packages/cli/dist/amitrans.mjs');
const { NOTES_AKI_COUNTS, writeListing } = await import(join(root, 'packages/testkit/dist/index.js'));
const dir = join(root, '.tmp/bench/catalog');
mkdirSync(dir, { recursive: true });
const SCALE = 54; // 20369 images x 54 ≈ 1.1 M images ≈ 2 M lines of text
const counts = Object.fromEntries(Object.entries(NOTES_AKI_COUNTS).map(([k, v]) => [k, v * SCALE]));
const total = 20369 * SCALE;
const files = { text: join(dir, `listing-${SCALE}.txt`), json: join(dir, `listing-${SCALE}.json`) };
for (const [form, file] of Object.entries(files)) {
  if (!existsSync(file)) {
    process.stderr.write(`bench-catalog: writing ${file} (once)\n`);
    await writeListing(`${file}.tmp`, { form, counts, total });
    execFileSync('mv', [`${file}.tmp`, file]);
  }
}
const lines = Number(execFileSync('wc', ['-l', files.text], { encoding: 'utf8' }).trim().split(/\s+/)[0]);

function timed(cmd, argv) {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...argv], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const secs = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  return { secs, rssMiB: Number(r.stderr.trim().split('\n').pop()) / 1024, stdout: r.stdout };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const akis = Object.keys(NOTES_AKI_COUNTS).join(' ');
const grepLoop = ['bash', ['-c', `for a in ${akis}; do grep "$a" "$1" | wc -l; done`, 'grep-loop', files.text]];
const cases = [
  ['amitrans catalog (text)', [process.execPath, [bin, 'catalog', files.text, '--json']]],
  ['amitrans catalog (JSON)', [process.execPath, [bin, 'catalog', files.json, '--json']]],
  ['12 x grep | wc -l (text)', grepLoop],
];
const runs = 3;
const results = cases.map(() => []);
for (let i = 0; i < runs; i++) {
  for (let k = 0; k < cases.length; k++) {
    const j = (i + k) % cases.length;
    results[j].push(timed(...cases[j][1]));
  }
}
const grepSecs = median(results[2].map((r) => r.secs));
const summary = JSON.parse(results[0][0].stdout);
console.log(`catalog bench: ${lines} lines (${(statSync(files.text).size / 2 ** 20).toFixed(0)} MiB text, ${(statSync(files.json).size / 2 ** 20).toFixed(0)} MiB JSON), ${summary.total} images, ${summary.pvgrub} pv-grub; median of ${runs}\n`);
console.log('| reader | seconds | vs grep loop | peak RSS MiB |');
console.log('| --- | ---: | ---: | ---: |');
cases.forEach(([name], k) => {
  const secs = median(results[k].map((r) => r.secs));
  console.log(`| ${name} | ${secs.toFixed(2)} | ${(secs / grepSecs).toFixed(2)} | ${Math.max(...results[k].map((r) => r.rssMiB)).toFixed(0)} |`);
});
