#!/usr/bin/env node
// npm run bench [-- --size-mib N] : time amitrans against qemu-img on the same input, same
// run, and print the ratios. Inputs are made here: a sparse raw disk with ~40% data (half
// of it compressible), and qemu-img's own containers of it. Peak memory from /usr/bin/time
// when present. Nothing here asserts; the numbers go into issue notes.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, writeSync, closeSync, ftruncateSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const sizeMiB = Number(args[args.indexOf('--size-mib') + 1] || 1024) || 1024;
const bin = join(import.meta.dirname, '../packages/cli/dist/main.js');
if (!existsSync(bin)) {
  console.error('bench: build first (npx tsc -b)');
  process.exit(1);
}
const dir = mkdtempSync(join(process.env.AMITRANS_TMPDIR ?? tmpdir(), 'amitrans-bench-'));
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };

function makeInput(path) {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, sizeMiB * 1024 * 1024);
  const block = Buffer.alloc(1024 * 1024);
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let mib = 0; mib < sizeMiB; mib++) {
    const r = rnd();
    if (r < 0.2) {
      for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((rnd() * 2 ** 32) >>> 0, i); // incompressible
    } else if (r < 0.4) {
      block.fill(0);
      for (let i = 0; i < block.length; i += 512) block.write(`sector ${mib}:${i} of some text data\n`, i); // compressible
    } else if (r < 0.5) {
      block.fill(0); // explicit zeros
    } else continue; // hole
    writeSync(fd, block, 0, block.length, mib * 1024 * 1024);
  }
  closeSync(fd);
}

const hasTime = existsSync('/usr/bin/time');
function timed(cmd, argv) {
  const full = hasTime ? ['/usr/bin/time', ['-f', '%M', cmd, ...argv]] : [cmd, argv];
  const t0 = performance.now();
  const r = spawnSync(full[0], full[1], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  const secs = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed: ${r.stderr}`);
  const rssKiB = hasTime ? Number(r.stderr.trim().split('\n').pop()) : NaN;
  return { secs, rssMiB: rssKiB / 1024 };
}

function best(fn, n = 2) {
  let b;
  for (let i = 0; i < n; i++) {
    const r = fn();
    if (!b || r.secs < b.secs) b = r;
  }
  return b;
}

const raw = join(dir, 'in.raw');
makeInput(raw);
const inputs = { raw };
for (const [name, fmtArgs] of [['qcow2', ['-O', 'qcow2']], ['vhd', ['-O', 'vpc', '-o', 'force_size=on']], ['vdi', ['-O', 'vdi']], ['vmdk', ['-O', 'vmdk', '-o', 'subformat=streamOptimized']]]) {
  inputs[name] = join(dir, `in.${name}`);
  execFileSync('qemu-img', ['convert', '-f', 'raw', ...fmtArgs, raw, inputs[name]], { env });
}
const qfmt = { raw: 'raw', qcow2: 'qcow2', vhd: 'vpc', vdi: 'vdi', vmdk: 'vmdk' };
const cases = [
  ['raw -> qcow2', 'raw', 'qcow2', [], ['-O', 'qcow2']],
  ['raw -> qcow2 compressed', 'raw', 'qcow2', ['-o', 'compress=on'], ['-O', 'qcow2', '-c']],
  ['raw -> vhd dynamic', 'raw', 'vhd', ['-o', 'force_size=on'], ['-O', 'vpc', '-o', 'force_size=on']],
  ['raw -> vhd fixed', 'raw', 'vhd', ['-o', 'subformat=fixed,force_size=on'], ['-O', 'vpc', '-o', 'subformat=fixed,force_size=on']],
  ['raw -> vdi', 'raw', 'vdi', [], ['-O', 'vdi']],
  ['raw -> vmdk stream', 'raw', 'vmdk', ['-o', 'subformat=streamOptimized'], ['-O', 'vmdk', '-o', 'subformat=streamOptimized']],
  ['qcow2 -> raw', 'qcow2', 'raw', [], ['-O', 'raw']],
  ['vhd -> raw', 'vhd', 'raw', [], ['-O', 'raw']],
  ['vdi -> raw', 'vdi', 'raw', [], ['-O', 'raw']],
  ['vmdk stream -> raw', 'vmdk', 'raw', [], ['-O', 'raw']],
];
console.log(`input: ${sizeMiB} MiB virtual, ${Math.round(statSync(raw).blocks * 512 / 2 ** 20)} MiB allocated; best of 2 runs; ${spawnSync('nproc').stdout}`.trim());
console.log('| case | amitrans s | qemu-img s | ratio (amitrans/qemu-img) | amitrans peak RSS MiB | qemu-img peak RSS MiB |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const [name, from, to, ours, theirs] of cases) {
  const outA = join(dir, `a.${to}`);
  const outQ = join(dir, `q.${to}`);
  try {
    const a = best(() => (rmSync(outA, { force: true }), timed(process.execPath, [bin, 'convert', inputs[from], outA, '-O', to, ...ours])));
    const q = best(() => (rmSync(outQ, { force: true }), timed('qemu-img', ['convert', '-f', qfmt[from], ...theirs, inputs[from], outQ])));
    console.log(`| ${name} | ${a.secs.toFixed(2)} | ${q.secs.toFixed(2)} | ${(a.secs / q.secs).toFixed(2)} | ${a.rssMiB.toFixed(0)} | ${q.rssMiB.toFixed(0)} |`);
  } catch (err) {
    console.log(`| ${name} | failed: ${String(err.message).split('\n')[0]} | | | | |`);
  }
  rmSync(outA, { force: true });
  rmSync(outQ, { force: true });
}
rmSync(dir, { recursive: true, force: true });
