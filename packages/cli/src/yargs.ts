import type { Argv, Options, PositionalOptions } from 'yargs';
import { UsageError } from './usage.js';
import { COMMAND_NAMES, COMMANDS, type CommandName, type CommandSpec, type OptionSpec, type ParsedArgv, type PositionalSpec } from './options.js';


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
  for (const name of COMMAND_NAMES) {
    const spec: CommandSpec = COMMANDS[name];
    parser = parser.command(
      [name, ...spec.positionals.map(usageWord)].join(' '),
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
  const [word, ...rest] = args;
  if (word === undefined || !Object.hasOwn(COMMANDS, word)) return args;
  const last = (COMMANDS[word as CommandName].positionals as readonly PositionalSpec[]).at(-1);
  if (!last?.variadic || !last.dash) return args;
  const end = rest.indexOf('--');
  return [word, ...rest.map((a, i) => (a === '-' && (end < 0 || i < end) ? STDIN_WORD : a))];
}

/**
 * `--no-clean` is an option of its own, but yargs reads any `--no-x` as "x is false" (and so set
 * clean to [false] and left no-clean false). `--no-clean=true` reaches the declared option.
 */
function withDeclaredNegations(args: readonly string[]): string[] {
  const [word, ...rest] = args;
  if (word === undefined || !Object.hasOwn(COMMANDS, word)) return [...args];
  const negations = new Set((COMMANDS[word as CommandName].options as readonly OptionSpec[]).filter((o) => o.name.startsWith('no-')).map((o) => `--${o.name}`));
  const end = rest.indexOf('--');
  return [word, ...rest.map((a, i) => (negations.has(a) && (end < 0 || i < end) ? `${a}=true` : a))];
}
