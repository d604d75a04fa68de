import yargs from 'yargs';
import { ImageError } from '@amitrans/block';
import { infoCommand } from './commands/info.js';
import type { CliIo } from './io.js';

/** Exit codes: 0 success, 1 the work failed (bad input, I/O), 2 the command line was wrong. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

class UsageError extends Error {}

/** Run the CLI in-process with the given arguments; resolves to the exit code. */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  let exitCode = 0;
  const parser = yargs([...args])
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
    await parser.parseAsync(undefined, undefined, (_err, _argv, output) => {
      if (output) io.stdout.write(`${output}\n`);
    });
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`amitrans: ${err.message}\nRun 'amitrans --help' for usage.\n`);
      exitCode = EXIT_USAGE;
    } else if (err instanceof ImageError) {
      io.stderr.write(`amitrans: ${err.message}\n`);
      exitCode = EXIT_FAILURE;
    } else {
      io.stderr.write(`amitrans: ${(err as Error).stack ?? String(err)}\n`);
      exitCode = EXIT_FAILURE;
    }
  }
  return exitCode;
}
