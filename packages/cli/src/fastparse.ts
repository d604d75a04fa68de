import { COMMANDS, commandAt, type ArgValue, type CommandName, type CommandSpec, type OptionSpec, type ParsedArgv, type PositionalSpec } from './options.js';

export interface FastParsed {
  command: CommandName;
  argv: ParsedArgv;
}

/**
 * Read an ordinary command line from the option table without loading yargs (a tenth of a
 * second of start-up, more than some whole conversions take). The result is what yargs would
 * give the handler. Undefined means "let yargs read it": help, negations, unknown flags, bad
 * choices or numbers, anything missing or extra, `--`, combined short flags, a value that
 * starts with '-', an empty string... so yargs still produces every error and help text.
 */
export function fastParse(args: readonly string[]): FastParsed | undefined {
  const at = commandAt(args);
  if (!at) return undefined;
  const { command, rest } = at;
  const spec: CommandSpec = COMMANDS[command];
  const flags = flagIndex(command);
  const values = new Map<OptionSpec, ArgValue>();
  const positionals: string[] = [];
  // After an array option's value yargs keeps taking words up to the next flag, even words
  // meant as positionals (which then go missing, an error).
  let openArray: { option: OptionSpec; list: string[] } | undefined;
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i]!;
    if (token === '') return undefined;
    if (token === '-') {
      // After an array value yargs stops eating, then rejects the '-' as an extra argument.
      if (openArray) return undefined;
      if (!positionalAt(spec, positionals.length)?.dash) return undefined;
      positionals.push(token);
      continue;
    }
    if (!token.startsWith('-')) {
      if (openArray) {
        // yargs checks every word it took against the choices; a bad one is its error to give.
        if (scalar(openArray.option, token) === undefined) return undefined;
        openArray.list.push(token);
      } else if (positionalAt(spec, positionals.length)) positionals.push(token);
      else return undefined;
      continue;
    }
    openArray = undefined;
    // --name, --name=value, -X: anything else (---x, -pO, -O=raw, -1, --) is yargs' to read.
    const eq = token.startsWith('--') ? token.indexOf('=') : -1;
    const flag = eq > 0 ? token.slice(0, eq) : token;
    const option = flags.get(flag);
    if (!option) return undefined;
    if (option.type === 'boolean') {
      // yargs reads `--json=false` and `--json false`; leave those to it.
      if (eq > 0 || values.has(option)) return undefined;
      const next = rest[i + 1];
      if (next === 'true' || next === 'false') return undefined;
      values.set(option, true);
      continue;
    }
    const raw = eq > 0 ? token.slice(eq + 1) : rest[++i];
    if (raw === undefined || raw === '' || raw.startsWith('-')) return undefined;
    const value = scalar(option, raw);
    if (value === undefined) return undefined;
    if (option.array) {
      const list = (values.get(option) as string[] | undefined) ?? [];
      list.push(value as string);
      values.set(option, list);
      openArray = { option, list };
    } else {
      if (values.has(option)) return undefined;
      values.set(option, value);
    }
  }
  const last = spec.positionals.at(-1);
  const variadic = last?.variadic === true;
  // A demanded variadic positional takes one word or more; an optional one, any number.
  const fewest = spec.positionals.length - (variadic && !last?.demand ? 1 : 0);
  if (variadic ? positionals.length < fewest : positionals.length !== fewest) return undefined;
  const argv: ParsedArgv = {};
  spec.positionals.forEach((p, i) => (argv[p.name] = p.variadic ? positionals.slice(i) : positionals[i]!));
  for (const option of spec.options) {
    const value = values.get(option) ?? (Array.isArray(option.default) ? [...(option.default as readonly string[])] : option.default as ArgValue | undefined);
    if (value === undefined && option.demandOption) return undefined;
    if (value !== undefined) argv[option.name] = value;
  }
  return { command, argv };
}

/** The positional the next word fills: the variadic last one takes every word left. */
function positionalAt(spec: CommandSpec, index: number): PositionalSpec | undefined {
  const last = spec.positionals.at(-1);
  return spec.positionals[index] ?? (last?.variadic ? last : undefined);
}

/** A value as yargs reads it for this option, or undefined when it might read it otherwise. */
function scalar(option: OptionSpec, raw: string): string | number | undefined {
  // yargs strips one pair of surrounding quotes ("q" reads as q); leave such values to it.
  if (raw.length >= 2 && (raw[0] === '"' || raw[0] === "'") && raw.at(-1) === raw[0]) return undefined;
  if (option.choices && !option.choices.includes(raw)) return undefined;
  if (option.type === 'number') {
    // yargs takes 0x10, 1e3, 010, .5 and turns junk into NaN; plain decimals only here.
    if (!/^(0|[1-9][0-9]{0,14})(\.[0-9]{1,6})?$/.test(raw)) return undefined;
    return Number(raw);
  }
  return raw;
}

const indexes = new Map<CommandName, Map<string, OptionSpec>>();

/** `--name` for names of two letters or more, `-X` for one-letter names, aliases alike. */
function flagIndex(command: CommandName): Map<string, OptionSpec> {
  let index = indexes.get(command);
  if (!index) {
    index = new Map();
    for (const option of COMMANDS[command].options as readonly OptionSpec[]) {
      for (const name of [option.name, ...(option.alias ?? [])]) index.set(name.length === 1 ? `-${name}` : `--${name}`, option);
    }
    indexes.set(command, index);
  }
  return index;
}
