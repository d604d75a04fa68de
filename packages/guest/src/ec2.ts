import { compareVersions } from './versions.js';

/**
 * EC2 facts the ec2-hvm target row uses: the NVMe I/O timeout AWS advises, and the AWS CLI
 * commands that turn a translated disk into an HVM AMI.
 */

/**
 * AWS: "we recommend setting nvme_core.io_timeout to the highest value possible. For current
 * kernels, the maximum is 4294967295, while for earlier kernels the maximum is 255", and "for
 * most Linux kernels earlier than version 4.6, this parameter is nvme.io_timeout"
 * (awsdocs EBS user guide, timeout-nvme-ebs-volumes). The parameter became an unsigned int
 * in 4.15 (before, a byte: 255 at most).
 */
export function nvmeTimeoutArg(kernelVersion: string): string {
  if (compareVersions(kernelVersion, '4.6') < 0) return 'nvme.io_timeout=255';
  if (compareVersions(kernelVersion, '4.15') < 0) return 'nvme_core.io_timeout=255';
  return 'nvme_core.io_timeout=4294967295';
}

export interface Ec2ImportInput {
  /** The output as written: a local path or s3://bucket/key. */
  output: string;
  /** raw, vmdk or vhd. */
  format: string;
  /** The guest's architecture (x86_64 or i386). */
  arch: string;
  /** The image runs on Nitro (ena): register with --ena-support. */
  ena: boolean;
  /** A name for the AMI. */
  name: string;
}

const IMPORT_FORMAT: Readonly<Record<string, string>> = { raw: 'RAW', vmdk: 'VMDK', vhd: 'VHD' };

/** Quote a word for a POSIX shell when it needs it. */
function sh(word: string): string {
  return /^[A-Za-z0-9_./:=@,+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The commands to run next: upload (for a local file), import-snapshot, and register-image
 * with the HVM settings (root /dev/xvda, legacy BIOS boot: the disk has an MBR and GRUB).
 */
export function ec2ImportCommands(o: Ec2ImportInput): string[] {
  const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(o.output);
  const base = o.output.split('/').pop() ?? o.output;
  const bucket = s3 ? s3[1]! : 'YOUR-BUCKET';
  const key = s3 ? s3[2]! : base;
  const arch = o.arch === 'i386' ? 'i386' : o.arch === 'aarch64' ? 'arm64' : 'x86_64';
  const format = IMPORT_FORMAT[o.format] ?? o.format.toUpperCase();
  return [
    ...(s3 ? [] : [`aws s3 cp ${sh(o.output)} ${sh(`s3://${bucket}/${key}`)}`]),
    `aws ec2 import-snapshot --description ${sh(`amitrans ${o.name}`)} --disk-container ${sh(`Format=${format},UserBucket={S3Bucket=${bucket},S3Key=${key}}`)}`,
    'aws ec2 describe-import-snapshot-tasks --import-task-ids IMPORT-TASK-ID    (until Status is completed: it gives SnapshotId)',
    `aws ec2 register-image --name ${sh(o.name)} --architecture ${arch} --virtualization-type hvm --root-device-name /dev/xvda ${o.ena ? '--ena-support' : '--no-ena-support'} --boot-mode legacy-bios --block-device-mappings ${sh('DeviceName=/dev/xvda,Ebs={SnapshotId=SNAPSHOT-ID}')}`,
  ];
}
