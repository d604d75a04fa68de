import { ImageError } from '@amitrans/block';
import type { ApplianceArgs } from './commands/appliance.js';
import { convertCommand } from './commands/convert.js';
import { infoCommand } from './commands/info.js';
import { inspectCommand } from './commands/inspect.js';
import { translateCommand } from './commands/translate.js';
import { fastParse } from './fastparse.js';
import type { CliIo } from './io.js';
import type { ArgvOf, CommandName, ParsedArgv } from './options.js';
import { UsageError } from './usage.js';

/** Exit codes: 0 success, 1 the work failed (bad input, I/O), 2 the command line was wrong. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** One handler per command, shared by the fast parser and yargs: argv as the table types it. */
const HANDLERS: { [K in CommandName]: (argv: ArgvOf<K>, io: CliIo, signal: AbortSignal) => Promise<void> } = {
  info: (a, io) => infoCommand(a.image, a.json, io),
  inspect: (a, io) => inspectCommand(a.image, a.partition, a.json, io),
  convert: (a, io, signal) =>
    convertCommand({
      input: a.input,
      output: a.output,
      format: a.O,
      options: a.o,
      appliance: appliance(a),
      json: a.json,
      sha256: a.sha256,
      sync: a.sync,
      progress: a.p,
    }, io, signal),
  translate: (a, io, signal) =>
    translateCommand({
      input: a.input,
      output: a.output,
      target: a.target,
      format: a.O,
      options: a.o,
      bus: a.bus,
      rootBy: a['root-by'],
      only: a.only,
      skip: a.skip,
      dryRun: a['dry-run'],
      size: a.size,
      align: a.align,
      grubDir: a['grub-dir'],
      rootPassword: a['root-password'],
      sshPasswordAuth: a['ssh-password-auth'],
      selinux: a.selinux,
      clean: a.clean,
      noClean: a['no-clean'],
      imageId: a['image-id'],
      partition: a.partition,
      appliance: appliance(a),
      json: a.json,
      sha256: a.sha256,
      progress: a.p,
    }, io, signal),
};

function appliance(a: ArgvOf<'convert'> | ArgvOf<'translate'>): ApplianceArgs {
  return { name: a.name, cpus: a.cpus, memory: a.memory, nic: a.nic, controller: a.controller, ovfVersion: a['ovf-version'] };
}

function dispatch(command: CommandName, argv: ParsedArgv, io: CliIo, signal: AbortSignal): Promise<void> {
  // Both parsers fill argv from the option table, so it has the types ArgvOf states.
  const handler = HANDLERS[command] as (argv: ParsedArgv, io: CliIo, signal: AbortSignal) => Promise<void>;
  return handler(argv, io, signal);
}

/** Run the CLI in-process with the given arguments; resolves to the exit code. */
export async function runCli(args: readonly string[], io: CliIo, signal: AbortSignal = new AbortController().signal): Promise<number> {
  try {
    // Ordinary command lines skip loading yargs (a tenth of a second of start-up, more than
    // some whole conversions take); help, errors and anything unusual go through yargs.
    const fast = fastParse(args);
    if (fast) {
      await dispatch(fast.command, fast.argv, io, signal);
    } else {
      const [{ default: yargs }, { parseWithYargs }] = await Promise.all([import('yargs'), import('./yargs.js')]);
      await parseWithYargs(yargs, args, (command, argv) => dispatch(command, argv, io, signal), (text) => io.stdout.write(text));
    }
    return 0;
  } catch (err) {
    return failure(err, io);
  }
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

function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}
