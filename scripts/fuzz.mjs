#!/usr/bin/env node
// The fuzz campaign (npm run fuzz; not in CI): mutated inputs for every parser that reads
// untrusted bytes. Each parser runs in its own child process (so its peak RSS is its own)
// over N cases (default 100,000; FUZZ_CASES overrides). A case is one seeded mutation of a
// valid input made at start-up by our writers or the standard tools; it must end in a
// result or an ImageError. Anything else thrown is a crash; a case not settled within 2 s
// (or a child silent for 20 s: a synchronous loop) is a suspected hang, run again alone with
// five times the time and counted as a hang only if it hangs again; a child that ends any other
// way (killed, aborted, out of memory) is a crash at its case, and the campaign goes on
// after it in a new child. Prints one row per parser: cases run, errors (ImageErrors: the
// expected outcome of most mutations), crashes, hangs, peak RSS (the child's own, sampled
// from /proc while it runs); a progress line a minute on stderr. Exits 1 when any parser
// crashed, hung or went over the 256 MiB table budget. `npm run fuzz -- NAME...` runs some
// parsers only; FUZZ_FROM=i starts each at case i (to replay or resume one); FUZZ_MINUTES=m
// ends the campaign after m minutes with the table of what ran.
import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';

const CASE_MS = 2000;
const SILENT_MS = 20_000;
/** FUZZ_MINUTES: the campaign's time; a parser running when it ends stops there (its row says so), later ones do not start. */
const DEADLINE = process.env.FUZZ_MINUTES ? Date.now() + Number(process.env.FUZZ_MINUTES) * 60_000 : Infinity;
/** A suspected hang is run again alone with this many times the time (see confirmHangs). */
const CONFIRM_SCALE = 5;
const RSS_LIMIT_MIB = 256;

/** xorshift32: a case is reproducible from (parser, index) alone. */
function prng(seed) {
  let s = (seed * 2654435761) >>> 0 || 1;
  const next = () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
  return { next, int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)) };
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff];
const INTERESTING32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 512, 4096, 0x100000];

/**
 * Mutate `seed` in place within its first `hot` bytes (headers and tables live there),
 * returning the bytes to parse and an undo. Truncation and appended junk change the length.
 */
function mutate(seed, hot, r) {
  const limit = Math.min(seed.length, hot);
  const saved = [];
  const set = (at, v) => {
    saved.push([at, seed[at]]);
    seed[at] = v;
  };
  const rounds = r.int(1, 4);
  let length = seed.length;
  let junk = 0;
  for (let i = 0; i < rounds; i++) {
    const kind = r.int(0, 9);
    const at = r.int(0, limit - 1);
    if (kind <= 3) set(at, seed[at] ^ (1 << r.int(0, 7)));
    else if (kind <= 5) set(at, r.next() < 0.5 ? INTERESTING[r.int(0, INTERESTING.length - 1)] : r.int(0, 255));
    else if (kind <= 7) {
      const v = INTERESTING32[r.int(0, INTERESTING32.length - 1)];
      const le = r.next() < 0.5;
      const base = at & ~3;
      for (let k = 0; k < 4 && base + k < seed.length; k++) set(base + k, le ? (v >>> (8 * k)) & 0xff : (v >>> (8 * (3 - k))) & 0xff);
    } else if (kind === 8) length = r.int(0, seed.length);
    else junk = r.int(1, 4096);
  }
  let bytes = seed.subarray(0, length);
  if (junk > 0) {
    // Appended junk goes through one scratch buffer per seed: a fresh copy of a 16 MiB
    // seed per case would be garbage the parser's peak RSS is then blamed for.
    mutate.scratch ??= new Map();
    let scratch = mutate.scratch.get(seed);
    if (!scratch) mutate.scratch.set(seed, (scratch = Buffer.alloc(seed.length + 4096)));
    scratch.set(bytes, 0);
    for (let k = 0; k < junk; k++) scratch[length + k] = r.int(0, 255);
    bytes = scratch.subarray(0, length + junk);
  }
  const undo = () => {
    for (let i = saved.length - 1; i >= 0; i--) seed[saved[i][0]] = saved[i][1];
  };
  return { bytes, undo };
}

// ---- seeds and parsers (loaded in the child) ----

const MIB = 1024 * 1024;

function sh(cmd, dir) {
  execFileSync('sh', ['-c', cmd], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** A small disk with data, zeros and holes, for the format writers. */
async function sourceDisk(block) {
  const bytes = new Uint8Array(4 * MIB);
  const r = prng(7);
  for (let c = 0; c < bytes.length / 65536; c++) {
    const k = r.next();
    if (k < 0.4) for (let i = 0; i < 65536; i += 4) bytes[c * 65536 + i] = r.int(0, 255);
    else if (k < 0.6) bytes.fill(c & 0xff, c * 65536, c * 65536 + 65536);
  }
  return new block.MemoryDevice(bytes, { writable: false });
}

async function written(block, driver, options) {
  const sink = new block.MemorySink();
  await driver.write(await sourceDisk(block), sink, { options });
  return Buffer.from(sink.bytes);
}

/** Open a container and read every byte of the disk it holds, 1 MiB at a time. */
async function openAndRead(block, open, bytes) {
  const dev = await open(new block.MemoryDevice(bytes, { writable: false }));
  const buf = new Uint8Array(Math.min(MIB, dev.size));
  for (let at = 0; at < Math.min(dev.size, 64 * MIB); at += buf.length) {
    await dev.read(buf.subarray(0, Math.min(buf.length, dev.size - at)), at);
  }
  await dev.close?.();
}

/** The fields of a three-part machine bundle with its kernel, ramdisk and mappings, for the manifest seed. */
function bundleManifestFields() {
  const hex = (n, c) => c.repeat(n);
  return {
    bundler: { name: 'euca-tools', version: '3.4.1', release: '3.4.1' },
    architecture: 'x86_64',
    blockDeviceMappings: [{ virtual: 'ami', device: 'sda1' }, { virtual: 'root', device: '/dev/sda1' }, { virtual: 'ephemeral0', device: 'sda2' }],
    productCodes: [],
    kernelId: 'aki-825ea7eb',
    ramdiskId: 'ari-00000001',
    name: 'image.img',
    user: '123456789012',
    imageType: 'machine',
    digest: hex(40, 'a'),
    digestAlgorithm: 'SHA1',
    size: 1073741824,
    bundledSize: 31457280,
    encryptionAlgorithm: 'AES-128-CBC',
    ec2EncryptedKey: hex(512, 'b'),
    userEncryptedKey: hex(512, 'c'),
    ec2EncryptedIv: hex(512, 'd'),
    userEncryptedIv: hex(512, 'e'),
    parts: [0, 1, 2].map((index) => ({ index, filename: `image.img.part.${index}`, digest: hex(40, String(index + 1)) })),
  };
}

async function parsers(dir) {
  const block = await import('@amitrans/block');
  const mbr = await import('@amitrans/mbr');
  const extfs = await import('@amitrans/extfs');
  const { vhdDriver } = await import('@amitrans/vhd');
  const { vdiDriver } = await import('@amitrans/vdi');
  const vmdk = await import('@amitrans/vmdk');
  const { qcow2Driver } = await import('@amitrans/qcow2');
  const ova = await import('@amitrans/ova');
  const { parseOvf } = await import('../packages/ova/dist/ovf.js');
  const guest = await import('@amitrans/guest');
  const catalog = await import('@amitrans/catalog');
  const bundle = await import('@amitrans/bundle');
  const testkit = await import('@amitrans/testkit');
  const text = (b) => Buffer.from(b).toString('latin1');
  const disk = (b) => new block.MemoryDevice(b, { writable: false });
  const initrd = async (b) => {
    await guest.readInitrd(b, { maxDecompressedBytes: 64 * MIB });
  };
  const listing = async (b) => {
    const chunks = (async function* () { yield Buffer.from(b); })();
    await catalog.readListing(chunks, 'fuzz', () => undefined, () => undefined);
  };
  const flat = disk(new Uint8Array(MIB));
  const descriptor = async (b) => {
    const dev = await vmdk.vmdkDriver.open(disk(b), { file: 'fuzz.vmdk', openRelated: async () => flat });
    await dev.read(new Uint8Array(512), 0);
  };
  const table = {
    'MBR/EBR': { hot: 6 * MIB, parse: (b) => mbr.readPartitionTable(disk(b)) },
    GPT: { hot: 64 * 1024, parse: (b) => mbr.readPartitionTable(disk(b)) },
    'ext superblock': { hot: 8192, parse: async (b) => extfs.extFacts(await extfs.readSuperblock(disk(b))) },
    VHD: { hot: 8192, parse: (b) => openAndRead(block, (d) => vhdDriver.open(d), b) },
    VDI: { hot: 8192, parse: (b) => openAndRead(block, (d) => vdiDriver.open(d), b) },
    'VMDK sparse': { hot: 128 * 1024, parse: (b) => openAndRead(block, (d) => vmdk.vmdkDriver.open(d), b) },
    'VMDK stream': { hot: 128 * 1024, parse: (b) => openAndRead(block, (d) => vmdk.vmdkDriver.open(d), b) },
    'VMDK descriptor': { hot: 4096, parse: descriptor },
    qcow2: { hot: 64 * 1024, parse: (b) => openAndRead(block, (d) => qcow2Driver.open(d), b) },
    'OVA tar': { hot: 8192, parse: (b) => openAndRead(block, (d) => ova.ovaDriver.open(d), b) },
    OVF: { hot: 1 << 20, parse: async (b) => parseOvf(b) },
    manifest: { hot: 4096, parse: async (b) => ova.parseManifest(text(b)) },
    'bundle manifest': { hot: 8192, parse: async (b) => bundle.parseManifest(b) },
    'initrd cpio': { hot: 4096, parse: initrd },
    'initrd gzip': { hot: 4096, parse: initrd },
    'initrd xz': { hot: 4096, parse: initrd },
    'initrd bzip2': { hot: 4096, parse: initrd },
    'initrd lzma': { hot: 4096, parse: initrd },
    'initrd lz4': { hot: 4096, parse: initrd },
    'initrd zstd': { hot: 4096, parse: initrd },
    'describe-images text': { hot: 1 << 20, parse: listing },
    'describe-images JSON': { hot: 1 << 20, parse: listing },
  };
  if (dir === undefined) return table;
  const file = (name) => readFileSync(join(dir, name));

  sh('truncate -s 16M mbr.img && printf "1M,2M,83\\n,4M,5\\n,1M,83\\n,1M,83\\n" | sfdisk -q mbr.img', dir);
  sh('truncate -s 16M gpt.img && printf "label: gpt\\n1M,2M\\n,4M\\n" | sfdisk -q gpt.img', dir);
  sh('truncate -s 8M ext.img && mkfs.ext4 -q -F ext.img', dir);
  sh('mkdir -p root/bin root/lib/modules && echo hi > root/init && echo x > root/bin/sh && cd root && find . | cpio -o -H newc --quiet > ../initrd.cpio', dir);
  for (const [tool, ext] of [['gzip -9 -c', 'gz'], ['xz -c --check=crc32', 'xz'], ['bzip2 -c', 'bz2'], ['lzma -c', 'lzma'], ['lz4 -l -c', 'lz4'], ['zstd -q -c', 'zst']]) {
    sh(`${tool} initrd.cpio > initrd.cpio.${ext}`, dir);
  }
  await testkit.writeListing(join(dir, 'listing.txt'), { form: 'text', images: 30, pageSize: 10, akiCounts: { 'aki-825ea7eb': 10, 'aki-4c7d9525': 5 } });
  await testkit.writeListing(join(dir, 'listing.json'), { form: 'json', images: 30, pageSize: 10, akiCounts: { 'aki-825ea7eb': 10, 'aki-4c7d9525': 5 } });

  const ovaBytes = await written(block, ova.ovaDriver);
  const entries = await ova.readTarEntries(disk(ovaBytes));
  const member = (suffix) => {
    const e = entries.find((x) => x.name.endsWith(suffix));
    return Buffer.from(ovaBytes.subarray(e.dataOffset, e.dataOffset + e.size));
  };
  const seeds = {
    'MBR/EBR': file('mbr.img'),
    GPT: file('gpt.img'),
    'ext superblock': file('ext.img'),
    VHD: await written(block, vhdDriver, { subformat: 'dynamic' }),
    VDI: await written(block, vdiDriver),
    'VMDK sparse': await written(block, vmdk.vmdkDriver),
    'VMDK stream': await written(block, vmdk.vmdkDriver, { subformat: 'streamOptimized' }),
    'VMDK descriptor': Buffer.from('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 2048 FLAT "x-flat.vmdk" 0\nRW 1024 ZERO\n\n# The Disk Data Base\nddb.adapterType = "ide"\n'),
    qcow2: await written(block, qcow2Driver, { compress: 'on', cluster_size: '4096' }),
    'OVA tar': ovaBytes,
    OVF: member('.ovf'),
    manifest: member('.mf'),
    'bundle manifest': Buffer.from(bundle.manifestXml(bundleManifestFields(), () => 'ab'.repeat(128))),
    'initrd cpio': file('initrd.cpio'),
    'initrd gzip': file('initrd.cpio.gz'),
    'initrd xz': file('initrd.cpio.xz'),
    'initrd bzip2': file('initrd.cpio.bz2'),
    'initrd lzma': file('initrd.cpio.lzma'),
    'initrd lz4': file('initrd.cpio.lz4'),
    'initrd zstd': file('initrd.cpio.zst'),
    'describe-images text': file('listing.txt'),
    'describe-images JSON': file('listing.json'),
  };
  // A seed its own parser refuses would make every case an error: a campaign without teeth.
  for (const [name, seed] of Object.entries(seeds)) {
    await table[name].parse(Buffer.from(seed)).catch((err) => {
      throw new Error(`the ${name} seed does not parse: ${err.message}`);
    });
    writeFileSync(join(dir, `seed-${Object.keys(seeds).indexOf(name)}`), seed);
  }
  return table;
}

// ---- child: run one parser's cases ----

/** Milliseconds this process's main thread has waited, runnable, for a CPU (/proc/self/schedstat); 0 without it. */
function runQueueMs() {
  try {
    return Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1]) / 1e6;
  } catch {
    return 0;
  }
}

/**
 * Resolves 'hang' once a case has had `ms` of time not counting the time it waited for a
 * CPU: niced beside other work, a 20 ms case can be starved for seconds of wall time.
 */
function caseTimeout(ms, setTimer) {
  const wall0 = performance.now();
  const wait0 = runQueueMs();
  return new Promise((resolve) => {
    const check = () => {
      const used = performance.now() - wall0 - (runQueueMs() - wait0);
      if (used >= ms) resolve('hang');
      else setTimer(setTimeout(check, ms - used));
    };
    setTimer(setTimeout(check, ms));
  });
}

async function child(name, cases, seedFile) {
  const { isImageError } = await import('@amitrans/block');
  // Seeds are made by the parent: this process's peak RSS is the parser's, not the writers'.
  const p = (await parsers(undefined))[name];
  // A parent that is gone (stopped by a signal) takes its children with it.
  process.on('disconnect', () => process.exit(0));
  // ... including one killed while this child was sending: the send fails with EPIPE.
  process.on('error', (err) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_IPC_CHANNEL_CLOSED') process.exit(0);
    throw err;
  });
  const seed = readFileSync(seedFile);
  const start = Number(process.env.FUZZ_START ?? 0);
  for (let i = start; i < cases; i++) {
    // Before every case: if this process hangs or dies, the parent knows which case did it.
    process.send({ case: i });
    const r = prng(i + 1 + name.length * 1_000_003);
    const { bytes, undo } = mutate(seed, p.hot, r);
    let timer;
    const timeout = caseTimeout(CASE_MS * Number(process.env.FUZZ_SCALE ?? 1), (t) => (timer = t));
    try {
      const outcome = await Promise.race([Promise.resolve().then(() => p.parse(bytes)), timeout]);
      if (outcome === 'hang') process.send({ hang: i });
    } catch (err) {
      if (isImageError(err)) process.send({ error: i });
      else process.send({ crash: i, err: String(err?.stack ?? err).split('\n').slice(0, 3).join(' | ') });
    } finally {
      clearTimeout(timer);
      undo();
    }
  }
  // process.send is asynchronous: exiting at once loses whatever the parent has not read
  // yet (up to a pipe's worth of case messages), so exit when the last one is handed over.
  process.send({ done: { maxRssKiB: process.resourceUsage().maxRSS } }, () => process.exit(0));
}

// ---- parent: one child per parser, a table at the end ----

/** Peak RSS (VmHWM) of a live process in KiB, from /proc; 0 when it is gone or there is no /proc. */
function peakRssKiB(pid) {
  try {
    return Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * Run cases [start, cases) of one parser in children; a child that hangs or dies is replaced
 * after its case. The child's messages are read until its IPC channel closes ('close', not
 * 'exit', which can come while messages are still in the pipe), and how it ended is
 * classified: the done message is a finish; SIGKILL from our watchdog is a hang; any other
 * end (a signal such as the kernel's OOM killer, an abort, an exit before done) is a crash
 * with its cause. Its peak RSS is sampled each second, so a child that dies still counts.
 */
function runParser(name, seedFile, cases, start, tally, scale = 1) {
  return new Promise((resolve) => {
    const c = fork(new URL(import.meta.url).pathname, ['--child', name, String(cases), seedFile], {
      env: { ...process.env, FUZZ_START: String(start), FUZZ_SCALE: String(scale) },
      execArgv: ['--max-old-space-size=1024'],
    });
    let current = start - 1;
    let seen = Date.now();
    let finished = false;
    let silentKill = false;
    let outOfTime = false;
    const watch = setInterval(() => {
      tally.maxRssKiB = Math.max(tally.maxRssKiB, peakRssKiB(c.pid));
      if (scale === 1 && Date.now() > DEADLINE && !outOfTime) {
        outOfTime = tally.partial = true;
        c.kill('SIGTERM');
      } else if (Date.now() - seen > SILENT_MS * scale) {
        silentKill = true;
        c.kill('SIGKILL');
      }
    }, 1000);
    c.on('message', (m) => {
      seen = Date.now();
      if (m.case !== undefined) {
        current = m.case;
        tally.cases++;
      } else if (m.error !== undefined) tally.errors++;
      else if (m.crash !== undefined) tally.crashes.push({ i: m.crash, err: m.err });
      else if (m.hang !== undefined) tally.hangs.push(m.hang);
      else if (m.done) {
        finished = true;
        tally.maxRssKiB = Math.max(tally.maxRssKiB, m.done.maxRssKiB);
      }
    });
    c.on('close', (code, signal) => {
      clearInterval(watch);
      if (finished || outOfTime) return resolve(tally);
      if (current < start) {
        // Dead before its first case: the seed or the harness is broken, not a parser.
        tally.crashes.push({ i: start, err: `the child ended before its first case (${signal ?? `exit ${code}`})` });
        return resolve(tally);
      }
      if (silentKill) tally.hangs.push(current);
      else tally.crashes.push({ i: current, err: `the child ended during the case (${signal ?? `exit ${code}`}${signal === 'SIGKILL' ? ': killed from outside, out of memory?' : ''})` });
      resolve(current + 1 < cases ? runParser(name, seedFile, cases, current + 1, tally, scale) : tally);
    });
  });
}

/**
 * On a loaded machine (the campaign runs niced beside other work) a case can be starved of
 * the CPU past its time without hanging. Cases are reproducible, so each suspected hang is
 * run again alone in a fresh child with CONFIRM_SCALE times the time: only one that hangs
 * again counts (one that then dies is a crash); the others are reported as slow.
 */
async function confirmHangs(name, seedFile, r) {
  const confirmed = [];
  for (const i of r.hangs) {
    const again = { cases: 0, errors: 0, crashes: [], hangs: [], maxRssKiB: 0 };
    await runParser(name, seedFile, i + 1, i, again, CONFIRM_SCALE);
    r.maxRssKiB = Math.max(r.maxRssKiB, again.maxRssKiB);
    if (again.hangs.length > 0) confirmed.push(i);
    else if (again.crashes.length > 0) r.crashes.push(...again.crashes);
    else r.slow.push(i);
  }
  r.hangs = confirmed;
}

async function parent() {
  const cases = Number(process.env.FUZZ_CASES ?? 100_000);
  const only = process.argv.slice(2);
  const dir = mkdtempSync(join(tmpdir(), 'amitrans-fuzz-'));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(128 + osConstants.signals[sig]);
    });
  }
  const all = Object.keys(await parsers(dir));
  const names = all.filter((n) => only.length === 0 || only.includes(n));
  const rows = [];
  let bad = false;
  for (const name of names) {
    if (Date.now() > DEADLINE) {
      rows.push([name, 'not run (FUZZ_MINUTES)', '', '', '', '', '', '']);
      continue;
    }
    const t0 = Date.now();
    const r = { cases: 0, errors: 0, crashes: [], hangs: [], slow: [], maxRssKiB: 0 };
    // A campaign takes hours: a line a minute says how far each parser got if it is stopped.
    const progress = setInterval(() => {
      process.stderr.write(`  ${name}: ${r.cases} cases so far, ${r.errors} errors, ${r.crashes.length} crashes, ${r.hangs.length} hangs, ${(r.maxRssKiB / 1024).toFixed(0)} MiB, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    }, 60_000);
    const seedFile = join(dir, `seed-${all.indexOf(name)}`);
    await runParser(name, seedFile, cases, Number(process.env.FUZZ_FROM ?? 0), r);
    clearInterval(progress);
    await confirmHangs(name, seedFile, r);
    const rss = r.maxRssKiB / 1024;
    rows.push([name, r.partial ? `${r.cases} (stopped: FUZZ_MINUTES)` : r.cases, r.errors, r.crashes.length, r.hangs.length, r.slow.length, rss.toFixed(0), ((Date.now() - t0) / 1000).toFixed(0)]);
    process.stderr.write(`${name}: ${r.cases} cases, ${r.errors} errors, ${r.crashes.length} crashes, ${r.hangs.length} hangs, ${rss.toFixed(0)} MiB\n`);
    for (const c of r.crashes.slice(0, 5)) process.stderr.write(`  crash at case ${c.i}: ${c.err}\n`);
    for (const h of r.hangs.slice(0, 5)) process.stderr.write(`  hang at case ${h}\n`);
    if (r.slow.length) process.stderr.write(`  over time under load, done when run again alone: cases ${r.slow.slice(0, 10).join(', ')}\n`);
    if (r.crashes.length || r.hangs.length || rss > RSS_LIMIT_MIB) bad = true;
  }
  const head = ['parser', 'cases', 'errors', 'crashes', 'hangs', 'slow, not hangs', 'peak RSS MiB', 'seconds'];
  const lines = [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`);
  process.stdout.write(`${lines.join('\n')}\n`);
  if (process.env.FUZZ_TABLE) writeFileSync(process.env.FUZZ_TABLE, `${lines.join('\n')}\n`);
  rmSync(dir, { recursive: true, force: true });
  process.exitCode = bad ? 1 : 0;
}

if (process.argv[2] === '--child') await child(process.argv[3], Number(process.argv[4]), process.argv[5]);
else await parent();
