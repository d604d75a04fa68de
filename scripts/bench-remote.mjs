// Issue 15's bench rows for `npm run bench` (input `s3`): the 2 GiB AMI (ami.raw, ~40%
// used) in an S3 bucket served by s3rver on 127.0.0.1, converted and translated from
// s3:// to s3:// by amitrans, against what one does without it: download with boto3
// (Debian's python3-boto3, its default transfer: 8 MiB parts, 10 threads), qemu-img
// convert, upload with boto3. Same server, same run, taking turns. Targets: convert to
// VMDK streamOptimized at most 0.6x the anchor's time; peak RSS at most 200 MiB for the
// convert and the translate (GNU time's maximum resident set, of amitrans' process; the
// anchor's is the largest of its three steps).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const BOTO3 = `
import os, sys, boto3
from botocore.config import Config
op, key, path = sys.argv[1], sys.argv[2], sys.argv[3]
s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'], config=Config(s3={'addressing_style': 'path'},
     request_checksum_calculation='when_required', response_checksum_validation='when_required'))
if op == 'put':
    s3.upload_file(path, 'bkt', key)
else:
    s3.download_file('bkt', key, path)
`;

/**
 * Start s3rver, put the AMI with boto3, and time the cases with bench.mjs's `measure`
 * (which runs with `env`: the server's endpoint and credentials are added to it).
 * Returns the table's lines.
 */
export async function benchRemote({ root, bin, env, measure, inputsDir, outDir }) {
  const { startS3, boto3 } = await import(join(root, 'packages/testkit/dist/index.js'));
  const s3 = await startS3('bkt');
  Object.assign(env, s3.env);
  const script = join(outDir, 'boto3-transfer.py');
  writeFileSync(script, BOTO3);
  const ami = join(inputsDir, 'ami.raw');
  try {
    process.stderr.write('bench: putting ami.raw into s3rver with boto3\n');
    await boto3.put(s3, 'ami.raw', ami);
    const local = join(outDir, 'anchor');
    // Download, convert, upload: each step's output is the next one's input.
    const anchor = (qemuArgs, ext) => ['-c',
      `set -e; python3 ${script} get ami.raw ${local}.raw; qemu-img convert -f raw ${qemuArgs} ${local}.raw ${local}.${ext}; ` +
      `python3 ${script} put anchor.${ext} ${local}.${ext}; rm -f ${local}.raw ${local}.${ext}`];
    const cases = [
      {
        name: 'convert s3:// → s3:// vmdk streamOptimized',
        ours: ['convert', 's3://bkt/ami.raw', 's3://bkt/out/ami.vmdk', '-O', 'vmdk', '-o', 'subformat=streamOptimized'],
        theirs: anchor('-O vmdk -o subformat=streamOptimized', 'vmdk'),
        target: 0.6,
      },
      {
        name: 'translate s3:// → s3:// kvm qcow2',
        ours: ['translate', 's3://bkt/ami.raw', 's3://bkt/out/ami.qcow2', '-t', 'kvm'],
        theirs: anchor('-O qcow2', 'qcow2'),
        target: undefined,
      },
    ];
    const lines = [
      `s3:// → s3:// against s3rver on 127.0.0.1 (ami.raw: 2 GiB, ~40% used); anchor: boto3 download + qemu-img convert + boto3 upload`,
      '',
      '| case | amitrans s | anchor s | ratio | target | amitrans peak RSS MiB | target | anchor peak RSS MiB |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ];
    const bold = (ok, text) => (ok ? text : `**${text}**`);
    for (const c of cases) {
      // The outputs are objects (overwritten each run): `out` only names a local file to clear.
      const m = measure([
        { cmd: process.execPath, argv: [bin, ...c.ours], out: `${local}.none` },
        { cmd: 'bash', argv: c.theirs, out: `${local}.none` },
      ]);
      const [a, t] = m.stats;
      const ratio = a.secs / t.secs;
      const line = `| ${c.name}${m.runs === 1 ? ' †' : ''} | ${a.secs.toFixed(1)} | ${t.secs.toFixed(1)} | ${c.target ? bold(ratio <= c.target, ratio.toFixed(2)) : ratio.toFixed(2)} | ${c.target ? `≤ ${c.target}` : ''} | ` +
        `${bold(a.rssMiB <= 200, a.rssMiB.toFixed(0))} | ≤ 200 | ${t.rssMiB.toFixed(0)} |`;
      process.stderr.write(`${line}\n`);
      lines.push(line);
    }
    return lines;
  } finally {
    await s3.close();
  }
}
