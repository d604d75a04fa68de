import { describe, expect, it } from 'vitest';
import { simpleConvert } from '../src/cli.js';

const base = { options: [], json: false, sha256: false, sync: false, progress: false };

describe('convert without yargs (the plain form)', () => {
  it('reads the plain forms as yargs does', () => {
    expect(simpleConvert(['convert', 'a.raw', 'b.qcow2'])).toEqual({ ...base, input: 'a.raw', output: 'b.qcow2' });
    expect(simpleConvert(['convert', 'a.raw', '-', '-O', 'vmdk', '-o', 'subformat=streamOptimized', '-o', 'cid=1', '--json']))
      .toEqual({ ...base, input: 'a.raw', output: '-', format: 'vmdk', options: ['subformat=streamOptimized', 'cid=1'], json: true });
    expect(simpleConvert(['convert', 'a', 'b', '--format=vhd', '--options=subformat=fixed', '-p', '--sha256', '--sync']))
      .toEqual({ ...base, input: 'a', output: 'b', format: 'vhd', options: ['subformat=fixed'], progress: true, sha256: true, sync: true });
  });

  it('leaves everything else to yargs', () => {
    const others = [
      [],
      ['info', 'a.raw'],
      ['convert', '--help'],
      ['convert', 'a.raw'],
      ['convert', 'a.raw', 'b', '--help'],
      ['convert', '-O', 'qcow2', 'a.raw', 'b'],
      ['convert', 'a.raw', 'b', 'c'],
      ['convert', 'a.raw', 'b', '-O'],
      ['convert', 'a.raw', 'b', '-O', 'raw', '-O', 'vhd'],
      ['convert', 'a.raw', 'b', '-O=raw'],
      ['convert', 'a.raw', 'b', '--no-json'],
      ['convert', 'a.raw', 'b', '--json=false'],
      ['convert', 'a.raw', 'b', '-o', 'x=1', 'y=2'],
      ['convert', 'a.raw', 'b', '-o', '-p'],
      ['convert', 'a.raw', 'b', '--', '-c'],
      ['convert', '-', 'b'],
      ['convert', 'a.raw', ''],
    ];
    for (const args of others) expect(simpleConvert(args), args.join(' ')).toBeUndefined();
  });
});
