// Issue 16's bench rows for `npm run bench` (input `bundle`): `amitrans bundle` and
// `amitrans unbundle` of a 2 GiB ext4 filesystem against the shell pipelines they replace.
// euca2ools (euca-bundle-image, euca-unbundle) is not packaged for this Debian, so the
// anchor is the pipeline the issue names, with the same cores:
//   bundle:   tar -cS | pigz | openssl enc -aes-128-cbc | split -b 10M, then sha1sum of the parts
//   unbundle: sha1sum of the parts, then cat parts | openssl enc -d | pigz -dc | tar -x
// The unbundle anchor reads amitrans' own bundle (its key and IV unwrapped by openssl
// pkeyutl with the cloud key), so both unbundle the same bytes.
//
// The image (built once, cached under .tmp/bench/bundle): mkfs.ext4 -d of
// /usr/lib/x86_64-linux-gnu, with a 300 MiB file written and deleted so that stale data
// sits in its free blocks as in a used AMI; the bundle's size is also compared with the
// pipeline's on a zerofree'd copy (free blocks zeroed by hand, what amitrans does itself).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dirSize = (d) => readdirSync(d).reduce((a, n) => a + statSync(join(d, n)).size, 0);

/**
 * Bench bundle and unbundle; `measure` is bench.mjs's (alternating runs, each command's
 * `after` called before its output is removed). Returns the table's lines.
 */
export function benchBundle({ root, bin, env, measure, runs }) {
  const work = join(root, '.tmp/bench/bundle');
  mkdirSync(work, { recursive: true });
  for (const tool of ['pigz', 'openssl', 'zerofree', 'mkfs.ext4', 'debugfs', 'sha1sum']) {
    execFileSync('sh', ['-c', `command -v ${tool} >/dev/null || { echo "bench: ${tool} is missing (bash scripts/setup-test-env.sh)" >&2; exit 1; }`], { env });
  }
  const sh = (script) => execFileSync('bash', ['-o', 'pipefail', '-c', script], { cwd: work, env, stdio: ['ignore', 'pipe', 'inherit'] }).toString();
  const image = join(work, 'ext4-2g.img');
  if (!existsSync(image)) {
    process.stderr.write('bench: building the 2 GiB ext4 image for bundle (once)\n');
    sh(`head -c 300M /dev/urandom > stale.bin && mkdir -p src && cp -r /usr/lib/x86_64-linux-gnu src/lib && cp stale.bin src/ &&
        mkfs.ext4 -q -F -d src ${image}.partial 2G && debugfs -w -R 'rm /stale.bin' ${image}.partial && mv ${image}.partial ${image} && rm -rf src stale.bin`);
  }
  const zeroed = join(work, 'zerofreed.img');
  if (!existsSync(zeroed)) {
    copyFileSync(image, `${zeroed}.partial`);
    sh(`zerofree ${zeroed}.partial && mv ${zeroed}.partial ${zeroed}`);
  }
  if (!existsSync(join(work, 'cloud.crt'))) sh('openssl req -x509 -newkey rsa:2048 -nodes -keyout cloud.key -out cloud.crt -subj /CN=bench -days 3650 2>/dev/null');

  const K = '00112233445566778899aabbccddeeff';
  const pipeline = (img, out) => ['-o', 'pipefail', '-c',
    `mkdir -p ${out} && tar -cS -C $(dirname ${img}) $(basename ${img}) | pigz -6 | openssl enc -aes-128-cbc -K ${K} -iv ${K} | split -b 10M - ${out}/p. && sha1sum ${out}/p.* > /dev/null`];
  const ours = join(work, 'ours');
  const theirs = join(work, 'theirs');
  const sizes = { ours: [], theirs: [] };
  const b = measure([
    { cmd: process.execPath, argv: [bin, 'bundle', image, ours, '--user', '1', '--arch', 'x86_64', '--ec2cert', join(work, 'cloud.crt')], out: ours, after: () => sizes.ours.push(dirSize(ours)) },
    { cmd: 'bash', argv: pipeline(image, theirs), out: theirs, after: () => sizes.theirs.push(dirSize(theirs)) },
  ]);
  rmSync(theirs, { recursive: true, force: true });
  execFileSync('bash', pipeline(zeroed, theirs), { env });
  const zeroedSize = dirSize(theirs);
  rmSync(theirs, { recursive: true, force: true });

  // One bundle, kept, for both unbundlers; its key and IV unwrapped with the cloud key.
  const kept = join(work, 'kept');
  rmSync(kept, { recursive: true, force: true });
  execFileSync(process.execPath, [bin, 'bundle', image, kept, '--user', '1', '--arch', 'x86_64', '--ec2cert', join(work, 'cloud.crt')], { env });
  const manifest = join(kept, 'ext4-2g.img.manifest.xml');
  const xml = readFileSync(manifest, 'latin1');
  const unwrap = (el) => {
    writeFileSync(join(work, `${el}.bin`), Buffer.from(new RegExp(`<${el}[^>]*>([0-9a-f]+)</${el}>`).exec(xml)[1], 'hex'));
    return sh(`openssl pkeyutl -decrypt -inkey cloud.key -in ${el}.bin`).trim();
  };
  const [key, iv] = [unwrap('ec2_encrypted_key'), unwrap('ec2_encrypted_iv')];
  const back = join(work, 'back.img');
  const untar = join(work, 'untar');
  const u = measure([
    { cmd: process.execPath, argv: [bin, 'unbundle', manifest, back, '-k', join(work, 'cloud.key')], out: back },
    { cmd: 'bash', argv: ['-o', 'pipefail', '-c', `mkdir -p ${untar} && parts=$(ls ${kept}/*.part.* | sort -V) && sha1sum $parts > /dev/null && ` +
      `cat $parts | openssl enc -d -aes-128-cbc -K ${key} -iv ${iv} | pigz -dc | tar -x -C ${untar}`], out: untar },
  ]);
  rmSync(kept, { recursive: true, force: true });

  const median = (xs) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
  const mib = (n) => (n / 2 ** 20).toFixed(1);
  const bold = (ok, text) => (ok ? text : `**${text}**`);
  const row = (name, m, target) => {
    const [a, t] = m.stats;
    const ratio = a.secs / t.secs;
    return `| ${name}${m.runs < runs ? ' †' : ''} | ${a.secs.toFixed(1)} | ${t.secs.toFixed(1)} | ${bold(target === undefined || ratio <= target, ratio.toFixed(2))} | ${target === undefined ? '—' : `≤ ${target}`} | ${a.cpu.toFixed(1)} | ${t.cpu.toFixed(1)} | ${a.rssMiB.toFixed(0)} | ${t.rssMiB.toFixed(0)} |`;
  };
  const ourSize = median(sizes.ours);
  return [
    `amitrans bundle / unbundle of ${image} (${mib(statSync(image).size)} MiB, ${mib(statSync(image).blocks * 512)} allocated) against the pipelines ` +
      'euca-bundle-image / euca-unbundle amount to (euca2ools is not installable here): median of the runs, alternating; † = one run (slow case)',
    '',
    '| case | amitrans s | pipeline s | ratio | target | amitrans CPU s | pipeline CPU s | amitrans peak RSS MiB | pipeline peak RSS MiB |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    row('bundle vs tar -cS \\| pigz \\| openssl enc \\| split + sha1sum', b, 0.5),
    row('unbundle vs sha1sum + cat \\| openssl enc -d \\| pigz -dc \\| tar -x', u, undefined),
    '',
    `bundle size: amitrans ${mib(ourSize)} MiB, the pipeline ${mib(median(sizes.theirs))} MiB, the pipeline on a zerofree'd copy ${mib(zeroedSize)} MiB: ` +
      `${bold(ourSize <= zeroedSize, (ourSize / zeroedSize).toFixed(3))}x of that (target ≤ 1)`,
  ];
}
