import yargs from 'yargs';
import { ImageError } from '@amitrans/block';
import { convertCommand } from './commands/convert.js';
import { infoCommand } from './commands/info.js';
import { inspectCommand } from './commands/inspect.js';
import type { CliIo } from './io.js';

/** Exit codes: 0 success, 1 the work failed (bad input, I/O), 2 the command line was wrong. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

class UsageError extends Error {}

/** Run the CLI in-process with the given arguments; resolves to the exit code. */
export async function runCli(args: readonly string[], io: CliIo, signal: AbortSignal = new AbortController().signal): Promise<number> {
  let exitCode = 0;
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
        y
          .positional('input', { type: 'string', demandOption: true, describe: 'image to read (any container, or gzip/bzip2/xz)' })
          .positional('output', { type: 'string', demandOption: true, describe: 'file to write, or - for stdout' })
          .option('O', { alias: 'format', type: 'string', describe: 'output format: raw, vhd, vdi, vmdk, qcow2 (default: from the output name, else raw)' })
          .option('o', { alias: 'options', type: 'string', array: true, default: [] as string[], describe: 'format options key=value[,key=value...], e.g. subformat=fixed' })
          .option('p', { alias: 'progress', type: 'boolean', default: false, describe: 'show progress even when stderr is not a terminal' })
          .option('sha256', { type: 'boolean', default: false, describe: 'print the sha256 of the output' })
          .option('json', { type: 'boolean', default: false, describe: 'print a JSON summary at the end' }),
      async (argv) => {
        await convertCommand({
          input: argv.input,
          // yargs hands a lone '-' positional over as ''.
          output: argv.output === '' ? '-' : argv.output,
          format: argv.O,
          options: argv.o,
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
    if (err instanceof UsageError) {
      io.stderr.write(`amitrans: ${err.message}\nRun 'amitrans --help' for usage.\n`);
      exitCode = EXIT_USAGE;
    } else if (err instanceof ImageError) {
      io.stderr.write(`amitrans: ${err.message}\n`);
      exitCode = EXIT_FAILURE;
    } else if (isSystemError(err)) {
      // ENOENT, EACCES, ENOSPC...: the message already names the path; no stack for the user.
      io.stderr.write(`amitrans: ${err.message}\n`);
      exitCode = EXIT_FAILURE;
    } else {
      io.stderr.write(`amitrans: internal error: ${(err as Error).stack ?? String(err)}\n`);
      exitCode = EXIT_FAILURE;
    }
  }
  return exitCode;
}

function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}
