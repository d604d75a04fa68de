/**
 * The command line, as data: every command with its positionals and options. yargs is configured
 * from this table (yargs.ts) and so is the fast parser (fastparse.ts) that reads ordinary
 * command lines without loading yargs, so the two cannot drift apart.
 */
import { CLEAN_OPERATIONS, STEP_NAMES, TARGETS } from '@amitrans/guest';

export interface PositionalSpec {
  readonly name: string;
  readonly describe: string;
  /** Demanded: the command string names it `<name>` (`<name..>` when variadic: one word or more). */
  readonly demand?: true;
  /** The last positional may take any number of words: `[name..]`, or `<name..>` when demanded. */
  readonly variadic?: true;
  /** `-` is a valid value (stdout). yargs hands a lone `-` over as '', which the yargs path maps back. */
  readonly dash?: true;
}

export interface OptionSpec {
  /** The key the handlers read (yargs' primary name). */
  readonly name: string;
  readonly alias?: readonly string[];
  /**
   * Absent for an option with `choices` only: yargs then leaves it untyped (as before the table
   * existed, which keeps the help text unchanged) and every choice is a non-numeric string.
   */
  readonly type?: 'string' | 'number' | 'boolean';
  /**
   * With type 'number': a byte count, plain or with K, M, G or T (powers of 1024, as
   * qemu-img reads sizes); handlers get the bytes.
   */
  readonly size?: true;
  /** With type 'number': a time in seconds, a positive decimal (`90`, `0.5`), as timeout(1) reads it. */
  readonly seconds?: true;
  readonly array?: true;
  readonly choices?: readonly string[];
  readonly default?: string | number | boolean | readonly string[];
  readonly demandOption?: true;
  readonly describe: string;
  /** yargs help group; none means the default `Options:`. */
  readonly group?: string;
}

export interface CommandSpec {
  readonly describe: string;
  readonly positionals: readonly PositionalSpec[];
  readonly options: readonly OptionSpec[];
}

const OVA = 'OVA output:';
const BUNDLE = 'Bundle output (-t eucalyptus -O bundle <dir | s3://bucket/prefix>):';

/** The appliance flags of convert and translate (-O ova); each is also an -o key. */
const APPLIANCE = [
  { name: 'name', type: 'string', group: OVA, describe: 'virtual machine name (default: the output file name)' },
  { name: 'cpus', type: 'number', group: OVA, describe: 'virtual CPUs (default 1)' },
  { name: 'memory', type: 'number', group: OVA, describe: 'memory in MiB (default 1024)' },
  { name: 'nic', choices: ['e1000', 'pcnet32', 'vmxnet3', 'virtio'], group: OVA, describe: 'network adapter (default e1000)' },
  { name: 'controller', choices: ['sata', 'ide'], group: OVA, describe: 'disk controller (default: ide; translate: from the verdict)' },
  { name: 'ovf-version', type: 'string', choices: ['1.0', '2.0'], group: OVA, describe: 'OVF 1.0 with a SHA-1 manifest (default) or 2.0 with SHA-256' },
] as const satisfies readonly OptionSpec[];

const STORE = 'Object storage (s3://bucket/key, https:// URLs):';

/** Where s3:// images live when not on AWS; credentials and region come from the AWS environment and config. */
const REMOTE = [
  { name: 'endpoint-url', type: 'string', group: STORE, describe: 'S3-compatible endpoint (MinIO, Ceph, Walrus); default AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS' },
  { name: 's3-path-style', type: 'boolean', group: STORE, describe: 'address buckets in the path (default: on with a custom endpoint)' },
] as const satisfies readonly OptionSpec[];

/** The disk build's bootloader: translate's choice, and inspect's so its verdicts match that translate's. */
const BOOTLOADER = [
  { name: 'grub-dir', type: 'string', describe: 'directory with GRUB legacy stage1, stage2, e2fs_stage1_5, or GRUB 2 i386-pc files (default: the guest\'s own, else the host\'s /usr/lib/grub/i386-pc)' },
  { name: 'bootloader', choices: ['grub-legacy', 'grub2'], describe: 'bootloader for the disk build (default: the guest\'s GRUB legacy when it can read the filesystem, else GRUB 2)' },
] as const satisfies readonly OptionSpec[];

const JSON_HELP = 'machine-readable output (see the CLI README)';
const PROGRESS = { name: 'p', alias: ['progress'], type: 'boolean', default: false, describe: 'show progress even when stderr is not a terminal' } as const satisfies OptionSpec;
const SHA256 = { name: 'sha256', type: 'boolean', default: false, describe: 'print the sha256 of the output' } as const satisfies OptionSpec;
const OUTPUT = { name: 'output', describe: 'file to write, s3://bucket/key, or - for stdout', demand: true, dash: true } as const satisfies PositionalSpec;

const WORKLIST = { name: 'worklist', describe: "work list: catalog --worklist JSON lines, JSON lines of {id, source, targets}, or CSV with id,source,targets", demand: true } as const satisfies PositionalSpec;
const FLEET_OUT = [
  { name: 'out', type: 'string', demandOption: true, describe: 'where outputs, result records and the report go: a directory or s3://bucket/prefix' },
] as const satisfies readonly OptionSpec[];
/** How each image is translated, for fleet run and fleet submit. */
const FLEET_JOB = [
  { name: 'targets', type: 'string', describe: 'targets for lines that name none, comma-separated (default: kvm,virtualbox,xenserver,eucalyptus)' },
  { name: 'formats', type: 'string', describe: 'output format per target, e.g. kvm=qcow2,virtualbox=vdi,xenserver=vhd,eucalyptus=raw (those are the defaults; eucalyptus=bundle, the default with EMI bundle credentials, is the EMI bundle with its EKI and ERI)' },
  { name: 'verify', type: 'boolean', default: false, describe: 'boot each output under QEMU the way its target would' },
  { name: 'verify-timeout', type: 'number', seconds: true, default: 300, describe: 'seconds per verify boot' },
  { name: 'verify-expect', type: 'string', describe: 'with --verify: success is a console line matching this regular expression (default: a login prompt)' },
  { name: 'root-password', type: 'string', describe: 'password:P | file:F | random | disabled, for every image' },
  { name: 'grub-dir', type: 'string', describe: 'GRUB legacy or GRUB 2 i386-pc files for disk builds (default: each guest\'s own, else the host\'s)' },
  { name: 'clean', type: 'string', array: true, choices: CLEAN_OPERATIONS, describe: 'clean operations to run (default: all but ssh-authorized-keys)' },
  { name: 'no-clean', type: 'boolean', default: false, describe: 'run no clean operation' },
] as const satisfies readonly OptionSpec[];
const EMI = 'EMI bundles for eucalyptus (with them the eucalyptus target is delivered as an EMI bundle with its EKI and ERI, unless --formats eucalyptus=raw):';
/** The credentials of EMI bundles, for the fleet commands that translate (run, worker). */
const FLEET_BUNDLE = [
  { name: 'user', type: 'string', group: EMI, describe: 'account id (default: EC2_USER_ID)' },
  { name: 'ec2cert', type: 'string', group: EMI, describe: "the cloud's X.509 certificate (default: EUCALYPTUS_CERT)" },
  { name: 'cert', type: 'string', group: EMI, describe: 'your X.509 certificate (default: EC2_CERT or EUCA_CERT)' },
  { name: 'privatekey', type: 'string', group: EMI, describe: 'your private key, signs the manifests (default: EUCA_PRIVATE_KEY or EC2_PRIVATE_KEY)' },
] as const satisfies readonly OptionSpec[];
const QUEUE = { name: 'queue', type: 'string', demandOption: true, describe: 'the Redis server of the queue: redis://host:port[/db]' } as const satisfies OptionSpec;
const QUEUE_NAME = { name: 'queue-name', type: 'string', default: 'amitrans-fleet', describe: 'the queue in that Redis (several fleets can share one)' } as const satisfies OptionSpec;

export const COMMANDS = {
  info: {
    describe: 'Show the container, virtual size, partitions and filesystems of an image',
    positionals: [{ name: 'image', describe: 'image file, s3://bucket/key or http(s):// URL', demand: true }],
    options: [
      ...REMOTE,
      { name: 'json', type: 'boolean', default: false, describe: JSON_HELP },
    ],
  },
  inspect: {
    describe: 'Inspect the guest: distribution, kernels, initrds, boot config, and whether it boots on kvm, virtualbox, xenserver, eucalyptus',
    positionals: [{ name: 'image', describe: 'image file (any container), s3://bucket/key or http(s):// URL', demand: true }],
    options: [
      ...REMOTE,
      { name: 'partition', type: 'number', describe: 'inspect this partition (1-based) instead of finding the root' },
      ...BOOTLOADER,
      { name: 'json', type: 'boolean', default: false, describe: JSON_HELP },
    ],
  },
  convert: {
    describe: 'Convert an image to another container format (qemu-img convert conventions); output - is stdout',
    positionals: [
      { name: 'input', describe: 'image to read (any container, an OVA, or gzip/bzip2/xz): a file, s3://bucket/key or http(s):// URL', demand: true },
      OUTPUT,
    ],
    options: [
      ...APPLIANCE,
      ...REMOTE,
      { name: 'O', alias: ['format'], type: 'string', describe: 'output format: raw, vhd, vdi, vmdk, qcow2, ova (default: from the output name, else raw)' },
      { name: 'o', alias: ['options'], type: 'string', array: true, default: [], describe: 'format options key=value[,key=value...], e.g. subformat=fixed; compress=gzip|bzip2|xz for raw and vhd (or name the output .gz, .bz2, .xz)' },
      PROGRESS,
      SHA256,
      { name: 'sync', type: 'boolean', default: false, describe: 'flush the output to the disk before it takes its name' },
      { name: 'json', type: 'boolean', default: false, describe: 'print a JSON summary at the end' },
    ],
  },
  translate: {
    describe: 'Translate an AMI for kvm, virtualbox, xenserver, eucalyptus or ec2-hvm (PV to HVM on AWS): guest edits, a bootable disk, any container',
    positionals: [
      { name: 'input', describe: 'the AMI: a bare root filesystem or a partitioned disk, any container; a file, s3://bucket/key or http(s):// URL', demand: true },
      OUTPUT,
    ],
    options: [
      ...APPLIANCE,
      ...REMOTE,
      { name: 'target', alias: ['t'], choices: TARGETS, demandOption: true, describe: 'where the image will boot' },
      { name: 'O', alias: ['format'], type: 'string', describe: 'output format: raw, qcow2, vmdk, vhd, vdi, ova, bundle (default: from the output name)' },
      { name: 'o', alias: ['options'], type: 'string', array: true, default: [], describe: 'output format options key=value[,...]; compress=gzip|bzip2|xz for raw and vhd (or name the output .gz, .bz2, .xz)' },
      { name: 'bus', choices: ['virtio', 'scsi', 'ide', 'sata', 'nvme', 'xen'], describe: 'disk bus on the target (default: the best the kernel can drive; ec2-hvm: nvme for Nitro, xen for Xen HVM)' },
      { name: 'root-by', choices: ['uuid', 'label', 'device'], describe: 'how fstab and root= name the root filesystem (default uuid)' },
      { name: 'only', type: 'string', array: true, choices: STEP_NAMES, default: [], describe: 'run only these steps' },
      { name: 'skip', type: 'string', array: true, choices: STEP_NAMES, default: [], describe: 'skip these steps' },
      { name: 'dry-run', type: 'boolean', default: false, describe: 'show the change report without writing' },
      { name: 'size', type: 'number', size: true, describe: 'disk size for the bootable disk: bytes, or with K, M, G, T (default: filesystem + alignment)' },
      { name: 'align', choices: ['modern', 'legacy'], describe: 'partition at sector 2048 (modern, default) or 63 (legacy)' },
      ...BOOTLOADER,
      { name: 'root-password', type: 'string', describe: 'password:P | file:F | random | disabled (SHA-512 crypt into /etc/shadow)' },
      { name: 'ssh-password-auth', choices: ['yes', 'no'], describe: 'PermitRootLogin and PasswordAuthentication in sshd_config' },
      { name: 'selinux', choices: ['relabel', 'permissive'], describe: 'when enforcing: relabel on first boot (default) or boot with enforcing=0' },
      { name: 'clean', type: 'string', array: true, choices: CLEAN_OPERATIONS, describe: 'clean operations to run (default: all but ssh-authorized-keys)' },
      { name: 'no-clean', type: 'boolean', default: false, describe: 'run no clean operation' },
      { name: 'image-id', type: 'string', array: true, default: [], describe: 'eucalyptus /etc/image-id fields key=value[,...] (timestamp=ISO for reproducible ones)' },
      { name: 'partition', type: 'number', describe: 'the root partition of a partitioned input (1-based)' },
      { name: 'initrd-add', type: 'string', array: true, default: [], describe: 'more modules for the initrd step to add, MOD[,MOD...] (with their dependencies)' },
      { name: 'user', type: 'string', group: BUNDLE, describe: 'account id (default: EC2_USER_ID)' },
      { name: 'ec2cert', type: 'string', group: BUNDLE, describe: "the cloud's X.509 certificate (default: EUCALYPTUS_CERT)" },
      { name: 'cert', type: 'string', group: BUNDLE, describe: 'your X.509 certificate (default: EC2_CERT or EUCA_CERT)' },
      { name: 'privatekey', type: 'string', group: BUNDLE, describe: 'your private key, signs the manifests (default: EUCA_PRIVATE_KEY or EC2_PRIVATE_KEY)' },
      { name: 'prefix', type: 'string', group: BUNDLE, describe: 'the EMI bundle name (default: the input file name)' },
      { name: 'part-size', type: 'number', size: true, group: BUNDLE, describe: 'bytes per part (default 10M)' },
      { name: 'acl', choices: ['aws-exec-read', 'public-read', 'ec2-bundle-read'], group: BUNDLE, describe: 'canned ACL for an s3:// destination (default aws-exec-read)' },
      { name: 'allow-xen-hvm-only', type: 'boolean', describe: 'ec2-hvm: write the image even when it runs only on Xen HVM instance types (no NVMe or ENA driver for Nitro)' },
      PROGRESS,
      SHA256,
      { name: 'json', type: 'boolean', default: false, describe: 'print the result (report, changes, output) as JSON' },
    ],
  },
  verify: {
    describe: 'Boot an image under QEMU the way its target boots it and say how far it got (exit 0 booted, 1 did not, 3 cannot verify here)',
    positionals: [{ name: 'image', describe: 'image to boot (any container, an OVA, or gzip/bzip2/xz); never written', demand: true }],
    options: [
      { name: 'target', alias: ['t'], choices: TARGETS, describe: 'the platform to emulate (default: read off the image: OVA/VDI virtualbox, a bare filesystem eucalyptus, else kvm)' },
      { name: 'bus', choices: ['virtio', 'virtio-scsi', 'lsi-scsi', 'ide', 'sata', 'nvme'], describe: "attach the root disk on this bus instead of the target's" },
      { name: 'nic', choices: ['virtio', 'e1000'], describe: "network adapter instead of the target's" },
      { name: 'direct-kernel', type: 'boolean', default: false, describe: "boot the kernel and initrd of the image's menu.lst directly (xenserver's smoke test)" },
      { name: 'euca-bus', choices: ['virtio', 'scsi'], describe: 'eucalyptus: the root disk on virtio (USE_VIRTIO_ROOT, default) or SCSI' },
      { name: 'kernel', type: 'string', describe: "boot this kernel instead of the image's own, as the node controller boots an EMI with its EKI (root=/dev/vda1): a file or its bundle manifest (opened with EC2_PRIVATE_KEY)" },
      { name: 'ramdisk', type: 'string', describe: 'with --kernel: the ramdisk (the ERI), a file or its bundle manifest' },
      { name: 'expect', type: 'string', describe: 'success is a console line matching this regular expression (default: a login prompt)' },
      { name: 'ssh', type: 'boolean', default: false, describe: 'success is an SSH banner from the guest (user-mode network, forward from a free 127.0.0.1 port)' },
      { name: 'timeout', type: 'number', seconds: true, default: 300, describe: 'seconds before giving up' },
      { name: 'memory', type: 'number', default: 768, describe: 'guest memory in MiB' },
      { name: 'log', type: 'string', describe: 'keep the serial console log in this file' },
      PROGRESS,
      { name: 'json', type: 'boolean', default: false, describe: 'print the result (milestones, class, QEMU command line, last console lines) as JSON' },
    ],
  },
  bundle: {
    describe: 'Bundle an image for EC2/Eucalyptus (euca-bundle-image): tar, gzip, AES-128-CBC, parts and a signed manifest, in one pass',
    positionals: [
      { name: 'image', describe: 'image to bundle (any container); free blocks of its ext root filesystem are bundled as zeros', demand: true },
      { name: 'dest', describe: 'directory for the parts and the manifest, or s3://bucket[/prefix] to upload them (parts first, manifest last)', demand: true },
    ],
    options: [
      { name: 'prefix', type: 'string', describe: 'name of the bundle files and the tar member (default: the image file name)' },
      { name: 'arch', alias: ['r'], choices: ['i386', 'x86_64', 'armhf', 'ppc', 'ppc64', 'ppc64le'], describe: "the image's architecture (default: from the guest's /sbin/init)" },
      { name: 'kernel', type: 'string', describe: 'kernel image id (eki-/aki-) for a machine image; true makes a kernel bundle' },
      { name: 'ramdisk', type: 'string', describe: 'ramdisk image id (eri-/ari-) for a machine image; true makes a ramdisk bundle' },
      { name: 'B', alias: ['block-device-mappings'], type: 'string', array: true, default: [], describe: 'block device mappings VIRTUAL=DEVICE[,...], e.g. ami=sda1,root=/dev/sda1' },
      { name: 'user', alias: ['u'], type: 'string', describe: 'your account id (default: EC2_USER_ID)' },
      { name: 'cert', alias: ['c'], type: 'string', describe: 'your X.509 certificate (default: EC2_CERT or EUCA_CERT); without it only the cloud can unbundle' },
      { name: 'privatekey', alias: ['k'], type: 'string', describe: 'your private key, to sign the manifest (default: EUCA_PRIVATE_KEY or EC2_PRIVATE_KEY); without it the manifest says UNSIGNED' },
      { name: 'ec2cert', type: 'string', describe: "the cloud's X.509 certificate (default: EUCALYPTUS_CERT); required" },
      { name: 'image-type', choices: ['machine', 'kernel', 'ramdisk'], describe: 'machine (default), kernel or ramdisk' },
      { name: 'productcodes', type: 'string', describe: 'product codes CODE1,CODE2,... (machine images)' },
      { name: 'part-size', type: 'number', size: true, describe: 'bytes per part, or with K, M, G (default 10M)' },
      { name: 'acl', choices: ['aws-exec-read', 'public-read', 'ec2-bundle-read'], describe: 'canned ACL of the uploaded objects (s3:// only; default aws-exec-read)' },
      ...REMOTE,
      PROGRESS,
      { name: 'json', type: 'boolean', default: false, describe: 'print the bundle (manifest, parts, sizes, digests) as JSON' },
    ],
  },
  unbundle: {
    describe: 'Unbundle an EC2/Eucalyptus bundle (euca-unbundle): parts checked, decrypted, gunzipped and untarred to a raw image',
    positionals: [
      { name: 'manifest', describe: 'the bundle\'s manifest.xml, local or s3://bucket/…manifest.xml; its parts are read from beside it', demand: true },
      { name: 'output', describe: 'raw image file to write', demand: true },
    ],
    options: [
      { name: 'privatekey', alias: ['k'], type: 'string', describe: 'private key of the user or the cloud (default: EUCA_PRIVATE_KEY or EC2_PRIVATE_KEY)' },
      { name: 'cert', alias: ['c'], type: 'string', describe: 'check the manifest signature with this X.509 certificate' },
      { name: 'O', alias: ['format'], type: 'string', describe: 'output format: raw (default), qcow2, vmdk, vhd, vdi, ova (through a sparse temporary)' },
      ...REMOTE,
      PROGRESS,
      { name: 'json', type: 'boolean', default: false, describe: 'print the result as JSON' },
    ],
  },
  catalog: {
    describe: 'Find, count and classify the AMIs worth translating, from describe-images listings (text or JSON)',
    positionals: [{ name: 'input', describe: 'describe-images listings: euca2ools/ec2-api-tools text or aws JSON; - for stdin', demand: true, dash: true, variadic: true }],
    options: [
      { name: 'kernels', type: 'string', describe: 'a describe-images listing of the kernel images: AKIs missing from the built-in table are classified by name' },
      { name: 'aki', type: 'string', describe: 'only images with these kernel ids (comma-separated)' },
      { name: 'class', type: 'string', describe: 'only these classes (comma-separated): pvgrub-hd0, pvgrub-hd00, aki-kernel, hvm, no-kernel-info' },
      { name: 'arch', type: 'string', describe: 'only these architectures (comma-separated): i386, x86_64, arm64' },
      { name: 'root-type', choices: ['instance-store', 'ebs'], describe: 'only images of this root device type' },
      { name: 'owner', type: 'string', describe: 'only images of these owners, alias or account id (comma-separated)' },
      { name: 'ids', type: 'boolean', default: false, describe: 'print the selected AMI ids, one per line' },
      { name: 'csv', type: 'boolean', default: false, describe: 'print the selected images as CSV' },
      { name: 'json', type: 'boolean', default: false, describe: 'print the table and totals as JSON' },
      { name: 'worklist', type: 'string', describe: 'write the selected pv-grub images as JSON lines for the fleet (id, location or snapshot, class, arch, targets)' },
    ],
  },
  'fleet run': {
    describe: 'Translate every image of a work list on this machine (a pool of images at once), resumable; report.json and report.html in --out',
    positionals: [WORKLIST],
    options: [
      ...FLEET_OUT,
      { name: 'concurrency', type: 'number', describe: 'images at once (default: from cores and free memory)' },
      { name: 'retry-failed', type: 'boolean', default: false, describe: 'run images whose last result failed again (done ones are always skipped)' },
      ...FLEET_JOB,
      ...FLEET_BUNDLE,
      ...REMOTE,
      PROGRESS,
      { name: 'json', type: 'boolean', default: false, describe: 'print the run summary and report totals as JSON' },
    ],
  },
  'fleet submit': {
    describe: 'Put one job per image of a work list on a BullMQ queue in Redis (job id = image id: submitting twice adds nothing)',
    positionals: [WORKLIST],
    options: [
      QUEUE,
      QUEUE_NAME,
      ...FLEET_OUT,
      ...FLEET_JOB,
      { name: 'timeout', type: 'number', seconds: true, default: 3600, describe: 'seconds one image may take before its try is abandoned and retried' },
      { name: 'attempts', type: 'number', default: 4, describe: 'tries per image; retries follow transient faults only (network, S3 5xx, a lost worker)' },
      { name: 'json', type: 'boolean', default: false, describe: 'print how many jobs were added as JSON' },
    ],
  },
  'fleet worker': {
    describe: 'Run fleet jobs from the queue on this machine until stopped (SIGTERM gives running images back to the queue)',
    positionals: [],
    options: [
      QUEUE,
      QUEUE_NAME,
      { name: 'concurrency', type: 'number', default: 1, describe: 'images at once in this worker' },
      { name: 'lock-seconds', type: 'number', default: 60, describe: "a job's lock: a dead worker's job is taken over by another after about this" },
      { name: 'stalled-seconds', type: 'number', default: 30, describe: 'how often to look for jobs of dead workers' },
      { name: 'until-empty', type: 'boolean', default: false, describe: 'exit when the queue has nothing left to do' },
      ...FLEET_BUNDLE,
      ...REMOTE,
      PROGRESS,
      { name: 'json', type: 'boolean', default: false, describe: 'print one JSON line per job event, and the summary' },
    ],
  },
  'fleet status': {
    describe: 'Show the queue: counts, which images run on which worker, which failed for good',
    positionals: [],
    options: [
      QUEUE,
      QUEUE_NAME,
      { name: 'json', type: 'boolean', default: false, describe: JSON_HELP },
    ],
  },
  'fleet report': {
    describe: 'Build report.json and report.html from the result records in --out',
    positionals: [],
    options: [
      ...FLEET_OUT,
      ...REMOTE,
      { name: 'json', type: 'boolean', default: false, describe: 'print report.json to stdout as well' },
    ],
  },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

export const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[];

/**
 * The command a command line names, and the words after it: one word (`info`) or a verb
 * and its subcommand (`fleet run`).
 */
export function commandAt(args: readonly string[]): { command: CommandName; rest: string[] } | undefined {
  const [a, b] = args;
  if (a !== undefined && Object.hasOwn(COMMANDS, a)) return { command: a as CommandName, rest: args.slice(1) };
  const two = `${a} ${b}`;
  if (a !== undefined && b !== undefined && Object.hasOwn(COMMANDS, two)) return { command: two as CommandName, rest: args.slice(2) };
  return undefined;
}

/**
 * Number options other than sizes and times count things (CPUs, MiB, a partition): each takes
 * a whole number from 1.
 * Sizes and counts are checked after parsing, by checkValues in cli.ts, for both parsers.
 */
export const MIN_COUNT = 1;

/** One parsed value: what yargs hands a handler for a positional or an option. */
export type ArgValue = string | number | boolean | string[];

/** A parsed command line: positionals and options under their table names (aliases not repeated). */
export type ParsedArgv = Record<string, ArgValue | undefined>;

type ScalarOf<O> = O extends { readonly choices: readonly (infer C)[] }
  ? C
  : O extends { readonly type: 'number' } | { readonly size: true }
    ? number
    : O extends { readonly type: 'boolean' }
      ? boolean
      : string;
type ValueOf<O> = O extends { readonly array: true } ? ScalarOf<O>[] : ScalarOf<O>;
type Always<O> = O extends { readonly default: unknown } | { readonly demandOption: true } ? true : false;

/** What a command's handler reads, typed from the table. */
export type ArgvOf<K extends CommandName> = {
  [P in (typeof COMMANDS)[K]['positionals'][number] as P['name']]: P extends { readonly variadic: true } ? string[] : string;
} & {
  [O in (typeof COMMANDS)[K]['options'][number] as O['name']]: Always<O> extends true ? ValueOf<O> : ValueOf<O> | undefined;
};
