import { ImageError } from '@amitrans/block';
import type { RemoteOptions } from '@amitrans/remote';
import { CatalogError } from '@amitrans/catalog';
import type { ApplianceArgs } from './commands/appliance.js';
import { bundleCommand, unbundleCommand, type TranslateBundleArgs } from './commands/bundle.js';
import { catalogCommand } from './commands/catalog.js';
import { convertCommand } from './commands/convert.js';
import { infoCommand } from './commands/info.js';
import { inspectCommand } from './commands/inspect.js';
import { translateCommand } from './commands/translate.js';
import { verifyCommand } from './commands/verify.js';
import { fleetReportCommand, fleetRunCommand, fleetStatusCommand, fleetSubmitCommand, fleetWorkerCommand } from './commands/fleet.js';
import { FleetError } from '@amitrans/fleet';
import { fastParse } from './fastparse.js';
import type { CliIo } from './io.js';
import { COMMANDS, MIN_COUNT, type ArgvOf, type CommandName, type OptionSpec, type ParsedArgv } from './options.js';
import { UsageError } from './usage.js';

/** Exit codes: 0 success, 1 the work failed (bad input, I/O), 2 the command line was wrong. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** One handler per command, shared by the fast parser and yargs: argv as the table types it. */
const HANDLERS: { [K in CommandName]: (argv: ArgvOf<K>, io: CliIo, signal: AbortSignal) => Promise<void | number> } = {
  info: (a, io) => infoCommand(a.image, a.json, io, remote(a)),
  inspect: (a, io) =>
    inspectCommand(a.image, { ...(a.partition === undefined ? {} : { partition: a.partition }), ...(a['grub-dir'] ? { grubDir: a['grub-dir'] } : {}), ...(a.bootloader ? { bootloader: a.bootloader } : {}) }, a.json, io, remote(a)),
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
      remote: remote(a),
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
      bootloader: a.bootloader,
      rootPassword: a['root-password'],
      sshPasswordAuth: a['ssh-password-auth'],
      selinux: a.selinux,
      clean: a.clean,
      noClean: a['no-clean'],
      imageId: a['image-id'],
      partition: a.partition,
      bundle: { user: a.user, ec2cert: a.ec2cert, cert: a.cert, privatekey: a.privatekey, prefix: a.prefix, partSize: a['part-size'], acl: a.acl },
      initrdAdd: a['initrd-add'],
      ...(a['allow-xen-hvm-only'] ? { allowXenHvmOnly: true } : {}),
      appliance: appliance(a),
      json: a.json,
      sha256: a.sha256,
      progress: a.p,
      remote: remote(a),
    }, io, signal),
  verify: (a, io, signal) =>
    verifyCommand({
      image: a.image,
      target: a.target,
      bus: a.bus,
      nic: a.nic,
      directKernel: a['direct-kernel'],
      eucaBus: a['euca-bus'],
      kernel: a.kernel,
      ramdisk: a.ramdisk,
      expect: a.expect,
      ssh: a.ssh,
      timeout: a.timeout,
      memory: a.memory,
      log: a.log,
      json: a.json,
      progress: a.p,
    }, io, signal),
  bundle: (a, io, signal) =>
    bundleCommand({
      image: a.image,
      dest: a.dest,
      prefix: a.prefix,
      arch: a.arch,
      kernel: a.kernel,
      ramdisk: a.ramdisk,
      mappings: a.B,
      user: a.user,
      cert: a.cert,
      privatekey: a.privatekey,
      ec2cert: a.ec2cert,
      imageType: a['image-type'],
      productcodes: a.productcodes,
      partSize: a['part-size'],
      acl: a.acl,
      remote: remote(a),
      progress: a.p,
      json: a.json,
    }, io, signal),
  unbundle: (a, io, signal) =>
    unbundleCommand({ manifest: a.manifest, output: a.output, privatekey: a.privatekey, cert: a.cert, format: a.O, remote: remote(a), progress: a.p, json: a.json }, io, signal),
  catalog: (a, io) =>
    catalogCommand({
      inputs: a.input,
      kernels: a.kernels,
      aki: a.aki,
      class: a.class,
      arch: a.arch,
      rootType: a['root-type'],
      owner: a.owner,
      ids: a.ids,
      csv: a.csv,
      json: a.json,
      worklist: a.worklist,
    }, io),
  'fleet run': (a, io, signal) =>
    fleetRunCommand({ ...fleetJob(a), worklist: a.worklist, concurrency: a.concurrency, retryFailed: a['retry-failed'], json: a.json, progress: a.p, remote: remote(a), bundle: fleetBundle(a) }, io, signal),
  'fleet submit': (a, io) => fleetSubmitCommand({ ...fleetJob(a), worklist: a.worklist, queue: a.queue, queueName: a['queue-name'], timeout: a.timeout, attempts: a.attempts, json: a.json }, io),
  'fleet worker': (a, io, signal) =>
    fleetWorkerCommand({
      queue: a.queue, queueName: a['queue-name'], concurrency: a.concurrency, lockSeconds: a['lock-seconds'], stalledSeconds: a['stalled-seconds'],
      untilEmpty: a['until-empty'], json: a.json, progress: a.p, remote: remote(a), bundle: fleetBundle(a),
    }, io, signal),
  'fleet status': (a, io) => fleetStatusCommand({ queue: a.queue, queueName: a['queue-name'], json: a.json }, io),
  'fleet report': (a, io) => fleetReportCommand({ out: a.out, json: a.json, remote: remote(a) }, io),
};

/** The translation flags fleet run and fleet submit share. */
function fleetJob(a: ArgvOf<'fleet run'> | ArgvOf<'fleet submit'>) {
  return {
    out: a.out, targets: a.targets, formats: a.formats, verify: a.verify, verifyTimeout: a['verify-timeout'], verifyExpect: a['verify-expect'],
    rootPassword: a['root-password'], grubDir: a['grub-dir'], clean: a.clean, noClean: a['no-clean'],
  };
}

/** The EMI bundle credentials of fleet run and fleet worker. */
function fleetBundle(a: ArgvOf<'fleet run'> | ArgvOf<'fleet worker'>): TranslateBundleArgs {
  return { user: a.user, ec2cert: a.ec2cert, cert: a.cert, privatekey: a.privatekey };
}

/** The object-storage flags, as the library takes them. */
function remote(a: { 'endpoint-url'?: string | undefined; 's3-path-style'?: boolean | undefined }): RemoteOptions {
  return {
    ...(a['endpoint-url'] !== undefined ? { endpoint: a['endpoint-url'] } : {}),
    ...(a['s3-path-style'] !== undefined ? { pathStyle: a['s3-path-style'] } : {}),
  };
}

function appliance(a: ArgvOf<'convert'> | ArgvOf<'translate'>): ApplianceArgs {
  return { name: a.name, cpus: a.cpus, memory: a.memory, nic: a.nic, controller: a.controller, ovfVersion: a['ovf-version'] };
}

function dispatch(command: CommandName, argv: ParsedArgv, io: CliIo, signal: AbortSignal): Promise<void | number> {
  // Both parsers fill argv from the option table; checkValues makes it the types ArgvOf states.
  const handler = HANDLERS[command] as (argv: ParsedArgv, io: CliIo, signal: AbortSignal) => Promise<void | number>;
  return handler(checkValues(command, argv), io, signal);
}

/** Sizes to bytes and counts checked, for either parser: a bad value is a usage error (exit 2). */
function checkValues(command: CommandName, argv: ParsedArgv): ParsedArgv {
  const out = { ...argv };
  for (const o of COMMANDS[command].options as readonly OptionSpec[]) {
    const v = out[o.name];
    if (v === undefined) continue;
    if (o.size) out[o.name] = parseSize(String(v), flagName(o));
    else if (o.seconds) out[o.name] = parseSeconds(String(v), flagName(o));
    else if (o.type === 'number') out[o.name] = parseCount(String(v), flagName(o));
  }
  return out;
}

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** `1073741824`, `512M`, `3G`, `1.5G`, `2TiB`: a whole number of bytes, as qemu-img reads sizes. */
export function parseSize(text: string, flag: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  const bytes = m ? Number(m[1]) * UNITS[m[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new UsageError(`${flag} ${JSON.stringify(text)}: expected a size in bytes, or a number with K, M, G or T (e.g. 8G)`);
  }
  return bytes;
}

function parseSeconds(text: string, flag: string): number {
  const n = /^[0-9]+(?:\.[0-9]+)?$/.test(text) ? Number(text) : NaN;
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`${flag} ${JSON.stringify(text)}: expected a number of seconds above 0 (e.g. 90 or 0.5)`);
  return n;
}

function parseCount(text: string, flag: string): number {
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < MIN_COUNT) throw new UsageError(`${flag} ${JSON.stringify(text)}: expected a whole number from ${MIN_COUNT}`);
  return n;
}

function flagName(o: OptionSpec): string {
  return o.name.length === 1 ? `-${o.name}` : `--${o.name}`;
}

/** Run the CLI in-process with the given arguments; resolves to the exit code. */
export async function runCli(args: readonly string[], io: CliIo, signal: AbortSignal = new AbortController().signal): Promise<number> {
  try {
    // Ordinary command lines skip loading yargs (a tenth of a second of start-up, more than
    // some whole conversions take); help, errors and anything unusual go through yargs.
    // A handler may return its own exit code (verify: 1 did not boot, 3 cannot verify here).
    let code: void | number = undefined;
    const fast = fastParse(args);
    if (fast) {
      code = await dispatch(fast.command, fast.argv, io, signal);
    } else {
      const [{ default: yargs }, { parseWithYargs }] = await Promise.all([import('yargs'), import('./yargs.js')]);
      await parseWithYargs(yargs, args, async (command, argv) => {
        code = await dispatch(command, argv, io, signal);
      }, (text) => io.stdout.write(text));
    }
    return code ?? 0;
  } catch (err) {
    return failure(err, io);
  }
}

/** Report an error as the user should see it; the exit code that goes with it. */
function failure(err: unknown, io: CliIo): number {
  if (err instanceof UsageError || (err instanceof ImageError && err.code === 'E_USAGE')) {
    io.stderr.write(`amitrans: ${err.message} (see amitrans --help)\n`);
    return EXIT_USAGE;
  }
  if (err instanceof FleetError && err.code === 'E_USAGE') {
    io.stderr.write(`amitrans: ${err.message} (see amitrans --help)\n`);
    return EXIT_USAGE;
  }
  if (err instanceof ImageError || err instanceof CatalogError || err instanceof FleetError || isSystemError(err)) {
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
