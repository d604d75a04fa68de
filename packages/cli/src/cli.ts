import { ImageError } from '@amitrans/block';
import { applianceFlags } from './commands/appliance.js';
import { convertCommand, type ConvertArgs } from './commands/convert.js';
import { infoCommand } from './commands/info.js';
import { inspectCommand } from './commands/inspect.js';
import { translateCommand } from './commands/translate.js';
import type { CliIo } from './io.js';

/** Exit codes: 0 success, 1 the work failed (bad input, I/O), 2 the command line was wrong. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

class UsageError extends Error {}

/** Run the CLI in-process with the given arguments; resolves to the exit code. */
export async function runCli(args: readonly string[], io: CliIo, signal: AbortSignal = new AbortController().signal): Promise<number> {
  // The common case skips loading yargs (a tenth of a second of start-up, more than some
  // whole conversions take); anything it does not recognise goes through yargs below.
  const simple = simpleConvert(args);
  if (simple) {
    try {
      await convertCommand(simple, io, signal);
      return 0;
    } catch (err) {
      return failure(err, io);
    }
  }
  let exitCode = 0;
  const { default: yargs } = await import('yargs');
  const parser = yargs()
    .scriptName('amitrans')
    .usage('$0 <command> [options]\n\nTurn Amazon PV machine images into images that boot elsewhere, in userspace.')
    .command(
      'info <image>',
      'Show the container, virtual size, partitions and filesystems of an image',
      (y) =>
        y
          .positional('image', { type: 'string', demandOption: true, describe: 'image file' })
          .option('json', { type: 'boolean', default: false, describe: 'machine-readable output (see the CLI README)' }),
      async (argv) => {
        await infoCommand(argv.image, argv.json, io);
      },
    )
    .command(
      'inspect <image>',
      'Inspect the guest: distribution, kernels, initrds, boot config, and whether it boots on kvm, virtualbox, xenserver, eucalyptus',
      (y) =>
        y
          .positional('image', { type: 'string', demandOption: true, describe: 'image file (any container)' })
          .option('partition', { type: 'number', describe: 'inspect this partition (1-based) instead of finding the root' })
          .option('json', { type: 'boolean', default: false, describe: 'machine-readable output (see the CLI README)' }),
      async (argv) => {
        await inspectCommand(argv.image, argv.partition, argv.json, io);
      },
    )
    .command(
      'convert <input> <output>',
      'Convert an image to another container format (qemu-img convert conventions); output - is stdout',
      (y) =>
        applianceFlags(y)
          .positional('input', { type: 'string', demandOption: true, describe: 'image to read (any container, an OVA, or gzip/bzip2/xz)' })
          .positional('output', { type: 'string', demandOption: true, describe: 'file to write, or - for stdout' })
          .option('O', { alias: 'format', type: 'string', describe: 'output format: raw, vhd, vdi, vmdk, qcow2, ova (default: from the output name, else raw)' })
          .option('o', { alias: 'options', type: 'string', array: true, default: [] as string[], describe: 'format options key=value[,key=value...], e.g. subformat=fixed; compress=gzip|bzip2|xz for raw and vhd (or name the output .gz, .bz2, .xz)' })
          .option('p', { alias: 'progress', type: 'boolean', default: false, describe: 'show progress even when stderr is not a terminal' })
          .option('sha256', { type: 'boolean', default: false, describe: 'print the sha256 of the output' })
          .option('sync', { type: 'boolean', default: false, describe: 'flush the output to the disk before it takes its name' })
          .option('json', { type: 'boolean', default: false, describe: 'print a JSON summary at the end' }),
      async (argv) => {
        await convertCommand({
          input: argv.input,
          // yargs hands a lone '-' positional over as ''.
          output: argv.output === '' ? '-' : argv.output,
          format: argv.O,
          options: argv.o,
          appliance: { name: argv.name, cpus: argv.cpus, memory: argv.memory, nic: argv.nic, controller: argv.controller, ovfVersion: argv['ovf-version'] },
          json: argv.json,
          sha256: argv.sha256,
          sync: argv.sync,
          progress: argv.p,
        }, io, signal);
      },
    )
    .command(
      'translate <input> <output>',
      'Translate an AMI for kvm, virtualbox, xenserver or eucalyptus: guest edits, a bootable disk, any container',
      (y) =>
        applianceFlags(y)
          .positional('input', { type: 'string', demandOption: true, describe: 'the AMI: a bare root filesystem or a partitioned disk, any container' })
          .positional('output', { type: 'string', demandOption: true, describe: 'file to write, or - for stdout' })
          .option('target', { alias: 't', choices: ['kvm', 'virtualbox', 'xenserver', 'eucalyptus'] as const, demandOption: true, describe: 'where the image will boot' })
          .option('O', { alias: 'format', type: 'string', describe: 'output format: raw, qcow2, vmdk, vhd, vdi, ova (default: from the output name)' })
          .option('o', { alias: 'options', type: 'string', array: true, default: [] as string[], describe: 'output format options key=value[,...]; compress=gzip|bzip2|xz for raw and vhd (or name the output .gz, .bz2, .xz)' })
          .option('bus', { choices: ['virtio', 'scsi', 'ide', 'sata'] as const, describe: 'disk bus on the target (default: the best the kernel can drive)' })
          .option('root-by', { choices: ['uuid', 'label', 'device'] as const, describe: 'how fstab and root= name the root filesystem (default uuid)' })
          .option('only', { type: 'string', array: true, default: [] as string[], describe: 'run only these steps' })
          .option('skip', { type: 'string', array: true, default: [] as string[], describe: 'skip these steps (fstab, bootloader, consoles, modules, network, eucalyptus, xenserver, selinux, clean)' })
          .option('dry-run', { type: 'boolean', default: false, describe: 'show the change report without writing' })
          .option('size', { type: 'number', describe: 'disk size in bytes for the bootable disk (default: filesystem + alignment)' })
          .option('align', { choices: ['modern', 'legacy'] as const, describe: 'partition at sector 2048 (modern, default) or 63 (legacy)' })
          .option('grub-dir', { type: 'string', describe: 'directory with GRUB legacy stage1, stage2, e2fs_stage1_5 (default: the guest\'s own)' })
          .option('root-password', { type: 'string', describe: 'password:P | file:F | random | disabled (SHA-512 crypt into /etc/shadow)' })
          .option('ssh-password-auth', { choices: ['yes', 'no'] as const, describe: 'PermitRootLogin and PasswordAuthentication in sshd_config' })
          .option('selinux', { choices: ['relabel', 'permissive'] as const, describe: 'when enforcing: relabel on first boot (default) or boot with enforcing=0' })
          .option('clean', { type: 'string', array: true, describe: 'clean operations to run (default: all but ssh-authorized-keys)' })
          .option('no-clean', { type: 'boolean', default: false, describe: 'run no clean operation' })
          .option('image-id', { type: 'string', array: true, default: [] as string[], describe: 'eucalyptus /etc/image-id fields key=value[,...] (timestamp=ISO for reproducible ones)' })
          .option('partition', { type: 'number', describe: 'the root partition of a partitioned input (1-based)' })
          .option('p', { alias: 'progress', type: 'boolean', default: false, describe: 'show progress even when stderr is not a terminal' })
          .option('sha256', { type: 'boolean', default: false, describe: 'print the sha256 of the output' })
          .option('json', { type: 'boolean', default: false, describe: 'print the result (report, changes, output) as JSON' }),
      async (argv) => {
        await translateCommand({
          input: argv.input,
          output: argv.output === '' ? '-' : argv.output,
          target: argv.target,
          format: argv.O,
          options: argv.o,
          bus: argv.bus,
          rootBy: argv['root-by'],
          only: argv.only,
          skip: argv.skip,
          dryRun: argv['dry-run'],
          size: argv.size,
          align: argv.align,
          grubDir: argv['grub-dir'],
          rootPassword: argv['root-password'],
          sshPasswordAuth: argv['ssh-password-auth'],
          selinux: argv.selinux,
          clean: argv.clean,
          noClean: argv['no-clean'],
          imageId: argv['image-id'],
          partition: argv.partition,
          appliance: { name: argv.name, cpus: argv.cpus, memory: argv.memory, nic: argv.nic, controller: argv.controller, ovfVersion: argv['ovf-version'] },
          json: argv.json,
          sha256: argv.sha256,
          progress: argv.p,
        }, io, signal);
      },
    )
    .demandCommand(1, 'Name a command.')
    .strict()
    .exitProcess(false)
    .showHelpOnFail(false)
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(msg);
    })
    .help()
    .version(false)
    .wrap(Math.min(100, process.stdout.columns || 100));
  try {
    await parser.parseAsync([...args], {}, (_err, _argv, output) => {
      if (output) io.stdout.write(`${output}\n`);
    });
  } catch (err) {
    exitCode = failure(err, io);
  }
  return exitCode;
}

/** Report an error as the user should see it; the exit code that goes with it. */
function failure(err: unknown, io: CliIo): number {
  if (err instanceof UsageError) {
    io.stderr.write(`amitrans: ${err.message}\nRun 'amitrans --help' for usage.\n`);
    return EXIT_USAGE;
  }
  if (err instanceof ImageError || isSystemError(err)) {
    // ENOENT, EACCES, ENOSPC...: the message already names the path; no stack for the user.
    io.stderr.write(`amitrans: ${err.message}\n`);
    return EXIT_FAILURE;
  }
  io.stderr.write(`amitrans: internal error: ${(err as Error).stack ?? String(err)}\n`);
  return EXIT_FAILURE;
}

/**
 * `convert <input> <output> [options]` in its plain form: both positionals first, then only
 * known flags, each value right after its flag, no flag twice except -o. Undefined for
 * anything else (help, other commands, --no-json, -O=x, a stray word...), which yargs
 * then parses, so both paths read every accepted command line the same way.
 */
export function simpleConvert(args: readonly string[]): ConvertArgs | undefined {
  const [command, input, output, ...rest] = args;
  const plain = (v: string | undefined): v is string => v !== undefined && v !== '' && !v.startsWith('-');
  if (command !== 'convert' || !plain(input) || (output !== '-' && !plain(output))) return undefined;
  const out: ConvertArgs = { input, output, options: [], json: false, sha256: false, sync: false, progress: false };
  const seen = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i]!;
    const eq = flag.startsWith('--') ? flag.indexOf('=') : -1;
    const name = eq > 0 ? flag.slice(0, eq) : flag;
    const key = ({ '-O': 'O', '--format': 'O', '-o': 'o', '--options': 'o', '-p': 'p', '--progress': 'p', '--sha256': 'sha256', '--sync': 'sync', '--json': 'json' } as Record<string, string>)[name];
    if (key === undefined || (seen.has(key) && key !== 'o')) return undefined;
    seen.add(key);
    if (key === 'O' || key === 'o') {
      const value = eq > 0 ? flag.slice(eq + 1) : rest[++i];
      if (!plain(value)) return undefined;
      if (key === 'O') out.format = value;
      else out.options.push(value);
    } else {
      if (eq > 0) return undefined;
      if (key === 'p') out.progress = true;
      else if (key === 'sha256') out.sha256 = true;
      else if (key === 'sync') out.sync = true;
      else out.json = true;
    }
  }
  return out;
}

function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}
