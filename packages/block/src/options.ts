import { ImageError } from './errors.js';

/**
 * One -o key of a format, as QEMU's QemuOptsList describes one: its help, how its text
 * is read, and its value when absent. The driver's table of these is what the output
 * resolver checks before any work and what the writer reads, so the two cannot disagree.
 */
export interface FormatOption<T = unknown> {
  readonly help: string;
  /** The value the text stands for; undefined when this key does not take that text. */
  readonly parse: (text: string) => T | undefined;
  /** What the key takes, for the refusal: 'on or off', 'fixed or dynamic'. */
  readonly expected: string;
  /** The value when the key is absent; a function when it is new each time (a random id). */
  readonly default?: T | (() => T);
}

/** A format's -o keys. */
export type OptionTable = Readonly<Record<string, FormatOption>>;

type ParsedOf<O> = O extends { readonly parse: (text: string) => infer R } ? Exclude<R, undefined> : never;
type ValueOf<O> = O extends { readonly default: unknown } ? ParsedOf<O> : ParsedOf<O> | undefined;

/** The options of one output as the writer uses them: every key of the table, parsed or defaulted. */
export type OptionValues<T extends OptionTable> = { readonly [K in keyof T]: ValueOf<T[K]> };

/** The one set of words a yes/no format option takes, as qemu-img's -o does. */
const ON = ['on', 'true', 'yes', '1'];
const OFF = ['off', 'false', 'no', '0'];

function readOnOff(text: string): boolean | undefined {
  const word = text.toLowerCase();
  return ON.includes(word) ? true : OFF.includes(word) ? false : undefined;
}

/** A bad -o value of a format: E_UNSUPPORTED, placed in that format's write options. */
export function optionError(format: string, detail: string): ImageError {
  return new ImageError('E_UNSUPPORTED', detail, { structure: `${format} write options` });
}

/** A yes/no key; without `fallback` an absent key stays undefined (so a writer can tell "not given"). */
export function onOffOption(help: string): FormatOption<boolean>;
export function onOffOption(help: string, fallback: boolean): FormatOption<boolean> & { readonly default: boolean };
export function onOffOption(help: string, fallback?: boolean): FormatOption<boolean> {
  return { help, parse: readOnOff, expected: 'on or off', ...(fallback === undefined ? {} : { default: fallback }) };
}

/** One word of a list, in any case; the value is the list's spelling of it. */
export function choiceOption<const C extends string>(help: string, choices: readonly C[]): FormatOption<C>;
export function choiceOption<const C extends string>(help: string, choices: readonly C[], fallback: C): FormatOption<C> & { readonly default: C };
export function choiceOption<const C extends string>(help: string, choices: readonly C[], fallback?: C): FormatOption<C> {
  const parse = (text: string): C | undefined => choices.find((c) => c.toLowerCase() === text.toLowerCase());
  const expected = choices.length === 2 ? `${choices[0]} or ${choices[1]}` : `one of ${choices.join(', ')}`;
  return { help, parse, expected, ...(fallback === undefined ? {} : { default: fallback }) };
}

/** A whole number in [min, max]. */
export function wholeOption(help: string, min: number, max: number, fallback: number | (() => number)): FormatOption<number> & { readonly default: number | (() => number) } {
  const parse = (text: string): number | undefined => {
    const n = Number(text);
    return /^\d+$/.test(text) && n >= min && n <= max ? n : undefined;
  };
  return { help, parse, expected: `a whole number from ${min} to ${max}`, default: fallback };
}

type Accepts = RegExp | ((text: string) => boolean);

/** Free text that `accepts` allows, kept as given. */
export function textOption(help: string, accepts: Accepts, expected: string): FormatOption<string>;
export function textOption(help: string, accepts: Accepts, expected: string, fallback: string | (() => string)): FormatOption<string> & { readonly default: string | (() => string) };
export function textOption(help: string, accepts: Accepts, expected: string, fallback?: string | (() => string)): FormatOption<string> {
  const ok = typeof accepts === 'function' ? accepts : (text: string): boolean => accepts.test(text);
  return { help, parse: (text) => (ok(text) ? text : undefined), expected, ...(fallback === undefined ? {} : { default: fallback }) };
}

/**
 * Refuse a key the format's option table does not list: the one check, made by the
 * output resolver before any work and by the writer itself when called directly.
 */
function checkKnownOptions(format: string, table: OptionTable, options: Readonly<Record<string, string>>): void {
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(table, key)) {
      const list = Object.keys(table);
      throw optionError(format, `${format} output has no option '${key}'${list.length ? ` (options: ${list.join(', ')})` : ' (it takes no options)'}`);
    }
  }
}

/**
 * Read an output's -o options through the format's table: an unknown key or a value the
 * key does not take is refused (E_UNSUPPORTED naming both); every key of the table comes
 * back parsed, or as its default.
 */
export function readOptions<T extends OptionTable>(format: string, table: T, options: Readonly<Record<string, string>> = {}): OptionValues<T> {
  checkKnownOptions(format, table, options);
  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(table)) {
    const text = options[key];
    if (text === undefined) {
      values[key] = typeof spec.default === 'function' ? (spec.default as () => unknown)() : spec.default;
      continue;
    }
    const value = spec.parse(text);
    if (value === undefined) throw optionError(format, `${format} ${key}=${text}: expected ${spec.expected}`);
    values[key] = value;
  }
  return values as OptionValues<T>;
}

/** True when `read` takes these options without a refusal: canStream for a format that streams whatever its options. */
export function acceptsOptions(read: (options: Readonly<Record<string, string>>) => unknown, options: Readonly<Record<string, string>> = {}): boolean {
  try {
    read(options);
    return true;
  } catch {
    return false;
  }
}
