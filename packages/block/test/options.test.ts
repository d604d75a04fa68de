import { describe, expect, it } from 'vitest';
import { ImageError, choiceOption, onOffOption, readOptions, textOption, wholeOption } from '../src/index.js';

// One option table per format (key -> help, parser, default), read the same way by the
// output resolver's check and by the writer.
const TABLE = {
  fast: onOffOption('on: go fast', false),
  strict: onOffOption('on: refuse more'),
  kind: choiceOption('a or b', ['alpha', 'Beta'], 'alpha'),
  count: wholeOption('how many', 1, 9, () => 3),
  label: textOption('a word', /^[a-z]+$/, 'lower-case letters'),
};

function refusal(options: Record<string, string>): ImageError {
  try {
    readOptions('demo', TABLE, options);
  } catch (err) {
    if (err instanceof ImageError) return err;
    throw err;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}

describe('readOptions', () => {
  it('fills every key: parsed when given, its default (called when a function) or undefined when not', () => {
    expect(readOptions('demo', TABLE, {})).toEqual({ fast: false, strict: undefined, kind: 'alpha', count: 3, label: undefined });
    expect(readOptions('demo', TABLE, { fast: 'YES', strict: '0', kind: 'beta', count: '9', label: 'abc' })).toEqual({
      fast: true,
      strict: false,
      kind: 'Beta',
      count: 9,
      label: 'abc',
    });
  });

  it('takes one set of on/off words', () => {
    for (const word of ['on', 'true', 'yes', '1', 'ON']) expect(readOptions('demo', TABLE, { fast: word }).fast).toBe(true);
    for (const word of ['off', 'false', 'no', '0', 'Off']) expect(readOptions('demo', TABLE, { fast: word }).fast).toBe(false);
  });

  it('refuses an unknown key, listing the known ones, and a bad value, saying what the key takes', () => {
    const unknown = refusal({ colour: 'blue' });
    expect(unknown.code).toBe('E_UNSUPPORTED');
    expect(unknown.message).toMatch(/demo output has no option 'colour' \(options: fast, strict, kind, count, label\)/);
    expect(refusal({ fast: 'maybe' }).message).toMatch(/demo fast=maybe: expected on or off/);
    expect(refusal({ kind: 'gamma' }).message).toMatch(/kind=gamma: expected alpha or Beta/);
    expect(refusal({ count: '10' }).message).toMatch(/count=10: expected a whole number from 1 to 9/);
    expect(refusal({ count: '2.5' }).message).toMatch(/count=2.5/);
    expect(refusal({ label: 'ABC' }).message).toMatch(/label=ABC: expected lower-case letters/);
    // Keys are own properties of the table: nothing inherited is an option.
    expect(refusal({ toString: 'x' }).message).toMatch(/no option 'toString'/);
    expect(() => readOptions('none', {}, { a: '1' })).toThrow(/it takes no options/);
  });
});
