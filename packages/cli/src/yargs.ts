import type { Argv, Options, PositionalOptions } from 'yargs';
import { UsageError } from './usage.js';
import { COMMAND_NAMES, COMMANDS, commandAt, type CommandName, type CommandSpec, type OptionSpec, type ParsedArgv, type PositionalSpec } from './options.js';


export type Dispatch = (command: CommandName, argv: ParsedArgv) => Promise<void>;

/**
 * Parse with yargs configured from the option table and hand the handler's keys to dispatch.
 * Only the fallback path loads yargs; the caller passes the module in, so this file imports
 * nothing but its types. Usage errors throw UsageError; help text goes to `write`.
 */
export async function parseWithYargs(yargs: (args?: readonly string[]) => Argv, args: readonly string[], dispatch: Dispatch, write: (text: string) => void): Promise<void> {
  let parser = yargs()
    .scriptName('amitrans')
    .usage('$0 <command> [options]\n\nTurn Amazon PV machine images into images that boot elsewhere, in userspace.');
  // Two-word commands (`fleet run`) are subcommands of their first word.
  const verbs = new Map<string, CommandName[]>();
  for (const name of COMMAND_NAMES) {
    const [first, second] = name.split(' ');
    if (second === undefined) parser = addCommand(parser, name, name, dispatch);
    else verbs.set(first!, [...(verbs.get(first!) ?? []), name]);
  }
  for (const [verb, names] of verbs) {
    parser = parser.command(`${verb} <command>`, VERB_HELP[verb] ?? verb, (y) => {
      for (const name of names) y = addCommand(y, name, name.split(' ')[1]!, dispatch);
      return y.demandCommand(1, `Name a ${verb} command: ${names.map((n) => n.split(' ')[1]).join(', ')}.`);
    });
  }
  parser = parser
    .demandCommand(1, 'Name a command.')
    .strict()
    .exitProcess(false)
    .showHelpOnFail(false)
    .fail((msg, err) => {
      if (err) throw err;
      // yargs spreads some messages (bad choices) over lines: one line, like every other error.
      throw new UsageError(msg.replace(/\s*\n\s*/g, ' '));
    })
    .help()
    .version(false)
    .wrap(Math.min(100, process.stdout.columns || 100));
  await parser.parseAsync(withStdinWords(withDeclaredNegations(args)), {}, (_err, _argv, output) => {
    if (output) write(`${output}\n`);
  });
}

/** What `amitrans --help` says of a verb that has subcommands. */
const VERB_HELP: Record<string, string> = {
  fleet: 'Translate thousands of images: fleet run (this machine), fleet submit / worker / status (BullMQ on Redis), fleet report',
};

/** One command from the table, under `word` (its whole name, or its subcommand word). */
function addCommand(parser: Argv, name: CommandName, word: string, dispatch: Dispatch): Argv {
  const spec: CommandSpec = COMMANDS[name];
  return parser.command(
    [word, ...spec.positionals.map(usageWord)].join(' '),
    spec.describe,
    (y) => {
      // The grouped options (OVA output:) come first: yargs lists its groups in the order
      // they first appear, and the OVA group has always been listed above the positionals.
      const grouped = spec.options.filter((o) => o.group !== undefined);
      for (const o of grouped) y = y.option(o.name, yargsOption(o));
      for (const p of spec.positionals) {
        y = y.positional(p.name, { type: 'string', ...(p.demand ? { demandOption: true } : {}), ...(p.variadic ? { array: true } : {}), describe: p.describe } satisfies PositionalOptions);
      }
      for (const o of spec.options) if (o.group === undefined) y = y.option(o.name, yargsOption(o));
      return y;
    },
    async (argv) => {
      await dispatch(name, pick(spec, argv));
    },
  );
}

function yargsOption(o: OptionSpec): Options {
  const out: Options = { describe: o.describe };
  if (o.alias) out.alias = [...o.alias];
  // Counts are read as text and checked by checkValues (cli.ts): yargs would turn `abc` into NaN.
  if (o.type && o.type !== 'number') out.type = o.type;
  if (o.array) out.array = true;
  if (o.choices) out.choices = [...o.choices];
  if (o.default !== undefined) out.default = Array.isArray(o.default) ? [...(o.default as readonly string[])] : o.default;
  if (o.demandOption) out.demandOption = true;
  if (o.group) out.group = o.group;
  return out;
}

/** The keys the handlers read, under the table's names; yargs adds aliases and camelCase forms. */
function pick(spec: CommandSpec, argv: Record<string, unknown>): ParsedArgv {
  const out: ParsedArgv = {};
  // yargs hands a lone '-' positional over as '' (and drops it from a variadic one: see
  // withStdinWords).
  const dash = (p: PositionalSpec, v: string): string => (p.dash && (v === '' || v === STDIN_WORD) ? '-' : v);
  for (const p of spec.positionals) {
    const v = argv[p.name];
    out[p.name] = p.variadic ? ((v as string[] | undefined) ?? []).map((x) => dash(p, String(x))) : dash(p, v as string);
  }
  const back = (v: unknown): unknown => (v === STDIN_WORD ? '-' : Array.isArray(v) ? v.map(back) : v);
  for (const o of spec.options) {
    const v = back(argv[o.name]) as ParsedArgv[string];
    if (v !== undefined) out[o.name] = v;
  }
  return out;
}

/** `<name>`, `<name..>` (one word or more) or `[name..]` (any number). */
export function usageWord(p: PositionalSpec): string {
  return p.variadic ? (p.demand ? `<${p.name}..>` : `[${p.name}..]`) : `<${p.name}>`;
}

/** What a lone '-' becomes on its way through yargs for a command with a variadic positional. */
const STDIN_WORD = '\u0000stdin';

/**
 * yargs drops a lone '-' from a variadic positional (`catalog a.txt -` would lose stdin):
 * it goes through as a word yargs keeps, and pick() turns it back.
 */
function withStdinWords(args: string[]): string[] {
  const at = commandAt(args);
  if (!at) return args;
  const words = args.slice(0, args.length - at.rest.length);
  const last = (COMMANDS[at.command].positionals as readonly PositionalSpec[]).at(-1);
  if (!last?.variadic || !last.dash) return args;
  const end = at.rest.indexOf('--');
  return [...words, ...at.rest.map((a, i) => (a === '-' && (end < 0 || i < end) ? STDIN_WORD : a))];
}

/**
 * `--no-clean` is an option of its own, but yargs reads any `--no-x` as "x is false" (and so set
 * clean to [false] and left no-clean false). `--no-clean=true` reaches the declared option.
 */
function withDeclaredNegations(args: readonly string[]): string[] {
  const at = commandAt(args);
  if (!at) return [...args];
  const words = args.slice(0, args.length - at.rest.length);
  const negations = new Set((COMMANDS[at.command].options as readonly OptionSpec[]).filter((o) => o.name.startsWith('no-')).map((o) => `--${o.name}`));
  const end = at.rest.indexOf('--');
  return [...words, ...at.rest.map((a, i) => (negations.has(a) && (end < 0 || i < end) ? `${a}=true` : a))];
}
