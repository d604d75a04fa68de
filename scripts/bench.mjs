#!/usr/bin/env node
// npm run bench [-- --quick] [-- --runs N] [-- --inputs ext3,random,disk,ami,ami-lean,sparse1t,catalog,bundle,s3] [-- --only SUBSTRING]
//
// Converts the same inputs with amitrans and with qemu-img in one run, alternating, and
// prints per input and output format the median time of each, the ratio amitrans/qemu-img,
// the median CPU seconds (user + system: steadier than wall time on a shared machine) and
// both peak RSS (the largest seen over the runs), as a Markdown table. Not a test:
// nothing here asserts; the numbers go into issue notes.
//
// Inputs (built once by scripts/make-bench-inputs.sh, cached under .tmp/bench/inputs):
//   ext3    2 GiB ext3 root filesystem, ~40% full of files from Debian packages (sparse)
//   random  1 GiB of random bytes (fully allocated)
//   disk    3 GiB MBR disk with an ext4 partition holding the same files (sparse)
//   ami     2 GiB PV AMI (scripts/make-debian-ami.sh: Debian's cloud kernel, modules, initrd,
//           pv-grub menu.lst, Xen fstab) filled to ~40% with the same files (sparse)
//   ami-lean  the same AMI with only the system (kernel and modules, ~115 MiB used)
// The AMIs are translated for kvm to qcow2 and raw (issue 5's bench: at most 1.5x qemu-img
// converting the same raw filesystem to qcow2).
// Each input is written to raw, qcow2, compressed qcow2, VHD dynamic, VHD fixed, VDI and
// streamOptimized VMDK, and each of those containers (made once by qemu-img) is read back
// to raw. The holes of a sparse raw input are found with SEEK_DATA/SEEK_HOLE (a python3
// child: Node has no lseek) and never read, as qemu-img does; the last table times qemu-img
// on fully allocated copies of the sparse inputs, where both tools must read every byte.
//   sparse1t  1 TiB raw holding a lazily made ext4 (~16 MiB of data, the rest holes), to
//           qcow2 and raw only (issue 22: within 10x of qemu-img; 408 s against 2.7 s when
//           every hole was read). No dense copy of it is made.
//
//   catalog a 2-million-line describe-images listing in the euca2ools text form (testkit's
//           writeListing: the notes' 12 pv-grub AKIs at 40 times their counts among other
//           kernels, HVM images, kernels and ramdisks, with their BLOCKDEVICEMAPPING and TAG
//           lines); `amitrans catalog` against the notes' loop, 12 x `grep aki-… | wc -l`
//           (issue 17: faster than the loop, peak RSS under 150 MiB).
//   bundle  `amitrans bundle` and `unbundle` of a 2 GiB ext4 against tar | pigz | openssl |
//           split and back (issue 16: bundle at most 0.5x the time, and no larger than the
//           pipeline's bundle of a zerofree'd copy); see scripts/bench-bundle.mjs.
//   s3      the ami input in s3rver on 127.0.0.1: `amitrans convert s3://… s3://…vmdk`
//           (streamOptimized) and `translate s3://… s3://…qcow2 -t kvm` against boto3
//           download + qemu-img convert + boto3 upload (issue 15: convert at most 0.6x,
//           peak RSS at most 200 MiB); see scripts/bench-remote.mjs.
// Each case runs `runs` times (default 5, --quick 1), the two tools taking turns and
// swapping who goes first; a case whose first pair took more than --slow seconds (default
// 20: the CPU-bound compressed writes) runs once only, marked †, to keep the default bench
// to about 15 minutes on 2 cores.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { benchBundle } from './bench-bundle.mjs';
import { benchRemote } from './bench-remote.mjs';

const root = join(import.meta.dirname, '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const quick = args.includes('--quick');
const runs = Number(opt('runs', quick ? 1 : 5));
const slowSeconds = Number(opt('slow', 20));
const inputNames = opt('inputs', 'ext3,random,disk,ami,ami-lean,sparse1t,catalog,bundle,s3').split(',');
/** Inputs too large for every case (and for a dense copy): only these output formats, no container read back. */
const scaleInputs = new Map([['sparse1t', { formats: ['raw', 'qcow2'], target: 10 }]]);
const wantCatalog = inputNames.includes('catalog');
const wantBundle = inputNames.includes('bundle');
const wantRemote = inputNames.includes('s3');
const diskInputs = inputNames.filter((n) => n !== 'catalog' && n !== 'bundle' && n !== 's3');
const only = opt('only', '');
const denseBaseline = !args.includes('--no-dense');
const bin = join(root, 'packages/cli/dist/amitrans.mjs');
if (!existsSync(bin)) {
  console.error('bench: build first (npm run build)');
  process.exit(1);
}
if (!existsSync('/usr/bin/time')) {
  console.error('bench: needs /usr/bin/time (GNU time) for peak RSS');
  process.exit(1);
}
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const inputsDir = join(root, '.tmp/bench/inputs');
const outDir = join(root, '.tmp/bench/out');
mkdirSync(outDir, { recursive: true });

// The s3 rows put the 2 GiB AMI (ami.raw) into the local S3 server: build it with the rest.
const toBuild = [...new Set([...diskInputs, ...(wantRemote ? ['ami'] : [])])];
if (toBuild.length > 0) execFileSync('bash', [join(root, 'scripts/make-bench-inputs.sh'), inputsDir, ...toBuild], { env, stdio: ['ignore', 'ignore', 'inherit'] });

/** Output formats: amitrans -O and -o, qemu-img -O and -o, what a container of it is called. */
const formats = [
  { name: 'raw', ours: ['-O', 'raw'], theirs: ['-O', 'raw'], qfmt: 'raw', target: 1.2 },
  { name: 'qcow2', ours: ['-O', 'qcow2'], theirs: ['-O', 'qcow2'], qfmt: 'qcow2', target: 1.2 },
  { name: 'qcow2 compressed', ours: ['-O', 'qcow2', '-o', 'compress=on'], theirs: ['-O', 'qcow2', '-c'], qfmt: 'qcow2', target: 0.6 },
  { name: 'vhd dynamic', ours: ['-O', 'vhd', '-o', 'force_size=on'], theirs: ['-O', 'vpc', '-o', 'force_size=on'], qfmt: 'vpc', target: 1.2 },
  { name: 'vhd fixed', ours: ['-O', 'vhd', '-o', 'subformat=fixed,force_size=on'], theirs: ['-O', 'vpc', '-o', 'subformat=fixed,force_size=on'], qfmt: 'vpc', target: 1.2 },
  { name: 'vdi', ours: ['-O', 'vdi'], theirs: ['-O', 'vdi'], qfmt: 'vdi', target: 1.2 },
  { name: 'vmdk streamOptimized', ours: ['-O', 'vmdk', '-o', 'subformat=streamOptimized'], theirs: ['-O', 'vmdk', '-o', 'subformat=streamOptimized'], qfmt: 'vmdk', target: 0.6 },
];
const slug = (s) => s.replace(/[^a-z0-9]+/gi, '-');

function timed(cmd, argv) {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', cmd, ...argv], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  const secs = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  const [rss, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { secs, rssMiB: rss / 1024, cpu: user + sys };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Run each command `runs` times, taking turns and rotating who goes first; each gets a
 * fresh (removed) output. A case whose first round took more than `slowSeconds` runs once.
 */
function measure(cmds) {
  const results = cmds.map(() => []);
  let n = runs;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < cmds.length; k++) {
      const j = (i + k) % cmds.length;
      const { cmd, argv, out, after } = cmds[j];
      rmSync(out, { recursive: true, force: true });
      // Neither tool pays for writing back the other's (or its own last) output.
      execFileSync('sync');
      results[j].push(timed(cmd, argv));
      after?.();
      rmSync(out, { recursive: true, force: true });
    }
    if (i === 0 && results.reduce((t, r) => t + r[0].secs, 0) > slowSeconds) n = 1;
  }
  return {
    stats: results.map((r) => ({ secs: median(r.map((x) => x.secs)), cpu: median(r.map((x) => x.cpu)), rssMiB: Math.max(...r.map((x) => x.rssMiB)) })),
    runs: n,
  };
}

/** qemu-img's container of an input in a format, made once and kept for later runs. */
function container(input, f) {
  const path = join(inputsDir, `${input}.${slug(f.name)}.${f.qfmt}`);
  if (!existsSync(path)) {
    process.stderr.write(`bench: making ${path} with qemu-img (once)\n`);
    execFileSync('qemu-img', ['convert', '-f', 'raw', ...f.theirs, join(inputsDir, `${input}.raw`), `${path}.tmp`], { env });
    renameSync(`${path}.tmp`, path);
  }
  return path;
}

const rows = [];
const results = new Map();
const started = performance.now();
const mib = (bytes) => Math.round(bytes / 2 ** 20);
if (diskInputs.length > 0) {
  console.log(`amitrans vs qemu-img ${execFileSync('qemu-img', ['--version'], { encoding: 'utf8' }).split('\n')[0].replace(/^qemu-img version /, '')}, ` +
    `node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}); median of ${runs} run(s), alternating; † = one run (slow case)`);
  console.log('');
  console.log('| input | case | amitrans s | qemu-img s | ratio | target | amitrans CPU s | qemu-img CPU s | amitrans peak RSS MiB | qemu-img peak RSS MiB |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
}
for (const input of diskInputs) {
  const raw = join(inputsDir, `${input}.raw`);
  const st = statSync(raw);
  const label = `${input} (${mib(st.size)} MiB, ${mib(st.blocks * 512)} allocated)`;
  const cases = [];
  if (input.startsWith('ami')) {
    for (const f of [formats[1], formats[0]]) {
      cases.push({
        name: `translate kvm → ${f.name}`,
        target: f.name === 'qcow2' ? 1.5 : 1.2,
        ours: (out) => [bin, 'translate', raw, out, '--target', 'kvm', ...f.ours],
        theirs: (out) => ['convert', '-f', 'raw', ...f.theirs, raw, out],
        ext: f.qfmt,
      });
    }
  }
  const scale = scaleInputs.get(input);
  for (const f of input.startsWith('ami') ? [] : formats.filter((x) => !scale || scale.formats.includes(x.name))) {
    const ext = f.qfmt === 'vpc' ? 'vhd' : f.qfmt;
    cases.push({
      name: `raw → ${f.name}`,
      target: scale?.target ?? f.target,
      ours: (out) => [bin, 'convert', raw, out, ...f.ours],
      theirs: (out) => ['convert', '-f', 'raw', ...f.theirs, raw, out],
      ext,
    });
  }
  for (const f of input.startsWith('ami') || scale ? [] : formats.slice(1)) {
    cases.push({
      name: `${f.name} → raw`,
      target: 1.2,
      source: () => container(input, f),
      ours: (out, src) => [bin, 'convert', src, out, '-O', 'raw'],
      theirs: (out, src) => ['convert', '-f', f.qfmt, '-O', 'raw', src, out],
      ext: 'raw',
    });
  }
  for (const c of cases) {
    if (only && !`${input} ${c.name}`.includes(only)) continue;
    const outA = join(outDir, `amitrans.${c.ext}`);
    const outQ = join(outDir, `qemu.${c.ext}`);
    let line;
    try {
      const src = c.source?.();
      const m = measure([
        { cmd: process.execPath, argv: c.ours(outA, src), out: outA },
        { cmd: 'qemu-img', argv: c.theirs(outQ, src), out: outQ },
      ]);
      const r = { a: m.stats[0], q: m.stats[1], runs: m.runs };
      results.set(`${input} ${c.name}`, r);
      const ratio = r.a.secs / r.q.secs;
      line = `| ${label} | ${c.name}${r.runs < runs ? ' †' : ''} | ${r.a.secs.toFixed(2)} | ${r.q.secs.toFixed(2)} | ${ratio <= c.target ? '' : '**'}${ratio.toFixed(2)}${ratio <= c.target ? '' : '**'} | ≤ ${c.target} | ${r.a.cpu.toFixed(2)} | ${r.q.cpu.toFixed(2)} | ${r.a.rssMiB.toFixed(0)} | ${r.q.rssMiB.toFixed(0)} |`;
    } catch (err) {
      line = `| ${label} | ${c.name} | failed: ${String(err.message).split('\n')[0]} | | | | | | | |`;
    }
    rows.push(line);
    console.log(line);
  }
}

if (wantCatalog && (!only || 'catalog'.includes(only) || only.includes('catalog'))) await benchCatalog();
if (wantBundle && (!only || 'bundle'.includes(only) || only.includes('bundle'))) {
  console.log('');
  for (const line of benchBundle({ root, bin, env, measure, runs })) console.log(line);
}
if (wantRemote && (!only || 's3'.includes(only) || only.includes('s3'))) {
  console.log('');
  // Last: it adds the S3 server's endpoint and credentials to env.
  for (const line of await benchRemote({ root, bin, env, measure, inputsDir, outDir })) console.log(line);
}

/** The notes' 12 us-east-1 pv-grub AKIs (fleet.md §1.1), as the grep loop names them. */
async function benchCatalog() {
  const { writeListing, NOTES_AKIS } = await import(join(root, 'packages/testkit/dist/index.js'));
  const listing = join(inputsDir, 'catalog-2M.txt');
  if (!existsSync(listing)) {
    process.stderr.write(`bench: writing ${listing} (once)\n`);
    mkdirSync(inputsDir, { recursive: true });
    // 910,000 images with their mapping and TAG lines: about 2 million lines.
    await writeListing(`${listing}.tmp`, { images: 910000, akiCounts: Object.fromEntries(NOTES_AKIS.map((a) => [a.aki, a.amis * 40])) });
    renameSync(`${listing}.tmp`, listing);
  }
  const lines = Number(execFileSync('wc', ['-l', listing], { encoding: 'utf8' }).trim().split(/\s+/)[0]);
  const loop = `for a in ${NOTES_AKIS.map((a) => a.aki).join(' ')}; do grep $a "$1" | wc -l; done`;
  // Both must count the same before their times mean anything.
  const ours = execFileSync(process.execPath, [bin, 'catalog', listing, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const counts = Object.fromEntries(JSON.parse(ours).akis.map((r) => [r.aki, r.images]));
  const theirs = execFileSync('sh', ['-c', loop, 'sh', listing], { encoding: 'utf8' }).trim().split('\n').map(Number);
  const agree = NOTES_AKIS.every((a, i) => counts[a.aki] === theirs[i]);
  const dummy = join(outDir, 'catalog.none');
  const m = measure([
    { cmd: process.execPath, argv: [bin, 'catalog', listing], out: dummy },
    { cmd: 'sh', argv: ['-c', loop, 'sh', listing], out: dummy },
  ]);
  const [a, g] = m.stats;
  const ratio = a.secs / g.secs;
  console.log('');
  console.log(`amitrans catalog vs the notes' grep loop (12 x grep aki-… | wc -l), node ${process.version}, ${availableParallelism()} cores; median of ${m.runs} run(s), alternating; counts ${agree ? 'agree' : '**differ**'}`);
  console.log('');
  console.log('| listing | amitrans s | grep loop s | ratio | target | amitrans peak RSS MiB | target |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  const bold = (ok, text) => (ok ? text : `**${text}**`);
  console.log(`| ${lines} lines, ${mib(statSync(listing).size)} MiB | ${a.secs.toFixed(2)} | ${g.secs.toFixed(2)} | ${bold(ratio < 1, ratio.toFixed(2))} | < 1 | ${bold(a.rssMiB < 150, a.rssMiB.toFixed(0))} | < 150 |`);
}

if (denseBaseline && diskInputs.length > 0) {
  // qemu-img on fully allocated copies of the sparse inputs: it then reads every byte, as
  // amitrans must read every byte of any raw input.
  console.log('');
  console.log('qemu-img on a fully allocated (non-sparse) copy of each sparse input, same median:');
  console.log('');
  console.log('| input | case | qemu-img s (sparse input) | qemu-img s (dense copy) | amitrans s | amitrans / qemu-img dense |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: |');
  for (const input of diskInputs) {
    const raw = join(inputsDir, `${input}.raw`);
    const st = statSync(raw);
    if (st.blocks * 512 >= st.size || scaleInputs.has(input)) continue;
    const dense = join(outDir, `${input}.dense.raw`);
    execFileSync('cp', ['--sparse=never', raw, dense]);
    execFileSync('sync'); // so its write-back does not run during the timed reads
    try {
      for (const f of [formats[0], formats[1]]) {
        const sparse = results.get(`${input} raw → ${f.name}`);
        if (input.startsWith('ami') && results.has(`${input} translate kvm → ${f.name}`)) {
          // An unbundled AMI is a dense file: both tools again, alternating, on the dense copy.
          const outA = join(outDir, `amitrans.${f.qfmt}`);
          const outQ = join(outDir, `qemu.${f.qfmt}`);
          const m = measure([
            { cmd: process.execPath, argv: [bin, 'translate', dense, outA, '--target', 'kvm', ...f.ours], out: outA },
            { cmd: 'qemu-img', argv: ['convert', '-f', 'raw', ...f.theirs, dense, outQ], out: outQ },
          ]);
          const q = results.get(`${input} translate kvm → ${f.name}`).q;
          console.log(`| ${input} | translate kvm → ${f.name} | ${q.secs.toFixed(2)} | ${m.stats[1].secs.toFixed(2)} | ${m.stats[0].secs.toFixed(2)} (on the dense copy) | ${(m.stats[0].secs / m.stats[1].secs).toFixed(2)} |`);
          continue;
        }
        if (!sparse) continue;
        const outQ = join(outDir, `qemu.${f.qfmt}`);
        const m = measure([{ cmd: 'qemu-img', argv: ['convert', '-f', 'raw', ...f.theirs, dense, outQ], out: outQ }]);
        const full = m.stats[0];
        console.log(`| ${input} | raw → ${f.name} | ${sparse.q.secs.toFixed(2)} | ${full.secs.toFixed(2)} | ${sparse.a.secs.toFixed(2)} | ${(sparse.a.secs / full.secs).toFixed(2)} |`);
      }
    } finally {
      rmSync(dense, { force: true });
    }
  }
}
console.log('');
console.log(`bench took ${((performance.now() - started) / 60000).toFixed(1)} min`);
