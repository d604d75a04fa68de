import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yargs from 'yargs';
import { prng, tmpDir, type TmpDir } from '@amitrans/testkit';
import { fastParse, type FastParsed } from '../src/fastparse.js';
import { COMMAND_NAMES, COMMANDS, type CommandName, type OptionSpec, type PositionalSpec } from '../src/options.js';
import { parseWithYargs } from '../src/yargs.js';
import { runBin } from './helpers.js';

/** What the yargs path hands the handler (captured, not run), or the usage error it throws. */
async function viaYargs(args: readonly string[]): Promise<FastParsed | { error: string }> {
  let got: FastParsed | undefined;
  try {
    await parseWithYargs(yargs, args, async (command, argv) => {
      got = { command, argv };
    }, () => {});
  } catch (err) {
    return { error: (err as Error).message };
  }
  return got ?? { error: 'no command ran (help?)' };
}

const convertBase = { o: [], p: false, sha256: false, sync: false, json: false };
const translateBase = { o: [], only: [], skip: [], 'dry-run': false, 'no-clean': false, 'image-id': [], 'initrd-add': [], p: false, sha256: false, json: false };

describe('fastParse: ordinary command lines without yargs', () => {
  const accepted: [string[], FastParsed][] = [
    [['info', 'a.img'], { command: 'info', argv: { image: 'a.img', json: false } }],
    [['inspect', 'a.img', '--json'], { command: 'inspect', argv: { image: 'a.img', json: true } }],
    [['inspect', '--partition', '2', 'a.img'], { command: 'inspect', argv: { image: 'a.img', partition: 2, json: false } }],
    // The forms the old plain-convert reader took.
    [['convert', 'a.raw', 'b.qcow2'], { command: 'convert', argv: { ...convertBase, input: 'a.raw', output: 'b.qcow2' } }],
    [['convert', 'a.raw', '-', '-O', 'vmdk', '-o', 'subformat=streamOptimized', '-o', 'cid=1', '--json'],
      { command: 'convert', argv: { ...convertBase, input: 'a.raw', output: '-', O: 'vmdk', o: ['subformat=streamOptimized', 'cid=1'], json: true } }],
    [['convert', 'a', 'b', '--format=vhd', '--options=subformat=fixed', '-p', '--sha256', '--sync'],
      { command: 'convert', argv: { ...convertBase, input: 'a', output: 'b', O: 'vhd', o: ['subformat=fixed'], p: true, sha256: true, sync: true } }],
    // Forms it left to yargs.
    [['convert', '-O', 'qcow2', 'a.raw', 'b'], { command: 'convert', argv: { ...convertBase, input: 'a.raw', output: 'b', O: 'qcow2' } }],
    [['convert', 'a.raw', 'b', '-o', 'x=1', 'y=2'], { command: 'convert', argv: { ...convertBase, input: 'a.raw', output: 'b', o: ['x=1', 'y=2'] } }],
    [['convert', 'a.raw', 'b.ova', '-O', 'ova', '--name', 'web', '--cpus', '2', '--memory', '2048', '--nic', 'virtio', '--controller', 'sata', '--ovf-version', '2.0'],
      { command: 'convert', argv: { ...convertBase, input: 'a.raw', output: 'b.ova', O: 'ova', name: 'web', cpus: 2, memory: 2048, nic: 'virtio', controller: 'sata', 'ovf-version': '2.0' } }],
    [['translate', 'a.img', 'b.qcow2', '--target', 'kvm', '-O', 'qcow2'],
      { command: 'translate', argv: { ...translateBase, input: 'a.img', output: 'b.qcow2', target: 'kvm', O: 'qcow2' } }],
    [['translate', 'a', 'b', '-t', 'xenserver', '--root-password', 'random', '--skip', 'clean'],
      { command: 'translate', argv: { ...translateBase, input: 'a', output: 'b', target: 'xenserver', 'root-password': 'random', skip: ['clean'] } }],
    [['translate', '--skip', 'clean', '--target=eucalyptus', 'a', '--dry-run', 'b', '--size', '1073741824', '--image-id', 'timestamp=2020', '--no-clean'],
      { command: 'translate', argv: { ...translateBase, input: 'a', output: 'b', target: 'eucalyptus', skip: ['clean'], 'dry-run': true, size: 1073741824, 'image-id': ['timestamp=2020'], 'no-clean': true } }],
    [['translate', 'a', 'b', '-t', 'kvm', '--skip', 'clean', 'network', '--only', 'fstab', '--skip', 'selinux', '--clean', 'logfiles', 'tmp-files'],
      { command: 'translate', argv: { ...translateBase, input: 'a', output: 'b', target: 'kvm', skip: ['clean', 'network', 'selinux'], only: ['fstab'], clean: ['logfiles', 'tmp-files'] } }],
  ];
  it('reads the common forms, as yargs does', async () => {
    for (const [args, want] of accepted) {
      expect(fastParse(args), args.join(' ')).toStrictEqual(want);
      expect(await viaYargs(args), args.join(' ')).toStrictEqual(want);
    }
  });

  it('leaves everything else to yargs', () => {
    const others = [
      [],
      ['bogus', 'a.raw'],
      ['--json', 'info', 'a.raw'],
      ['info', 'a.raw', '--help'],
      ['info', 'a.raw', '-h'],
      ['info', '--version'],
      ['convert', '--help'],
      ['convert', 'a.raw'],
      ['convert', 'a.raw', 'b', 'c'],
      ['convert', 'a.raw', 'b', '-O'],
      ['convert', 'a.raw', 'b', '-O', 'raw', '-O', 'vhd'],
      ['convert', 'a.raw', 'b', '-O=raw'],
      ['convert', 'a.raw', 'b', '--no-json'],
      ['convert', 'a.raw', 'b', '--json=false'],
      ['convert', 'a.raw', 'b', '--json', 'false'],
      ['convert', 'a.raw', 'b', '--json', '--json'],
      ['convert', 'a.raw', 'b', '-o', '-p'],
      ['convert', 'a.raw', 'b', '--', '-c'],
      ['convert', 'a.raw', 'b', '--'],
      ['convert', '-', 'b'],
      ['convert', 'a.raw', ''],
      ['convert', 'a.raw', 'b', '-O', ''],
      ['convert', 'a.raw', 'b', '--format='],
      ['convert', 'a.raw', 'b', '-pO', 'raw'],
      ['convert', 'a.raw', 'b', '-Oraw'],
      ['convert', 'a.raw', 'b', '--dryRun'],
      ['convert', 'a.raw', 'b', '--bogus'],
      ['convert', 'a.raw', 'b', '--nic', 'rtl8139'],
      ['convert', 'a.raw', 'b', '--cpus', 'two'],
      ['convert', 'a.raw', 'b', '--cpus', '0x10'],
      ['convert', 'a.raw', 'b', '--cpus', '-1'],
      ['convert', 'a.raw', 'b', '--ovf-version', '3.0'],
      // An array flag eats the words after it: here the positionals (yargs: missing output).
      ['convert', '-o', 'x=1', 'a.raw', 'b'],
      ['convert', 'a.raw', '-o', 'x=1', '-'],
      ['translate', 'a', 'b'],
      ['translate', 'a', 'b', '-t', 'qemu'],
      ['translate', 'a', 'b', '-t', 'kvm', '--size', '1e9'],
      ['translate', 'a', 'b', '-t', 'kvm', '--root-password', '-x'],
      ['translate', 'a', 'b', '-t', 'kvm', '-t', 'kvm'],
      ['translate', 'a', 'b', '-t', 'kvm', '--no-json'],
      ['translate', 'a', 'b', '-t', 'kvm', '--no-skip'],
      ['inspect', 'a.img', '--partition'],
      ['inspect', 'a.img', 'b.img'],
      ['info', '-'],
    ];
    for (const args of others) expect(fastParse(args), args.join(' ')).toBeUndefined();
  });

  it('--no-clean is the option of that name on both paths (yargs alone read it as clean=[false])', async () => {
    const args = ['translate', 'a', 'b', '-t', 'kvm', '--no-clean'];
    const want = { command: 'translate', argv: { ...translateBase, input: 'a', output: 'b', target: 'kvm', 'no-clean': true } };
    expect(fastParse(args)).toStrictEqual(want);
    expect(await viaYargs(args)).toStrictEqual(want);
    expect(await viaYargs(['translate', 'a', 'b', '-t', 'kvm', '--no-clean', '--help'])).toStrictEqual({ error: 'no command ran (help?)' });
  });
});

/** Values a generated command line may give: mostly valid, some that yargs reads differently. */
const WORDS = ['a.img', 'b.qcow2', 'dir/x.vmdk', 'with space', 'x=1,y=2', 'k=v=w', '007', '1e3', 'true', 'false', 'info', 'convert', '-', '', '-x', '--', '"q"'];
const NUMBERS = ['0', '1', '2', '512', '1073741824', '1.5', '010', '1e3', '0x10', '-1', 'abc', '99999999999999999999', '.5', ''];
const ODD = ['--help', '-h', '--version', '--no-json', '--no-skip', '--', '-pO', '-Oraw', '--bogus', '--dryRun', '--root-by', '-O=raw', '---json', '--json=true', '--o=x'];

function generate(r: ReturnType<typeof prng>, names: readonly CommandName[]): string[] {
  const pick = <T>(list: readonly T[]): T => list[r.int(0, list.length - 1)]!;
  const chance = (p: number): boolean => r.next() < p;
  const command: CommandName = pick(names);
  const spec = COMMANDS[command];
  const items: string[][] = [];
  const options = spec.options as readonly OptionSpec[];
  const forms = (o: OptionSpec): string[] => [o.name, ...(o.alias ?? [])].map((n) => (n.length === 1 ? `-${n}` : `--${n}`));
  const value = (o: OptionSpec): string => {
    if (o.choices && chance(0.9)) return pick(o.choices);
    if (o.type === 'number') return chance(0.7) ? pick(NUMBERS.slice(0, 6)) : pick(NUMBERS);
    return chance(0.8) ? pick(WORDS.slice(0, 7)) : pick(WORDS);
  };
  const chosen = options.filter((o) => chance(o.demandOption ? 0.95 : 3 / options.length + 0.1));
  for (const o of chosen) {
    const times = o.array ? r.int(1, 3) : chance(0.05) ? 2 : 1;
    for (let t = 0; t < times; t++) {
      const flag = pick(forms(o));
      if (o.type === 'boolean') {
        items.push(chance(0.05) ? [`${flag}=${pick(['true', 'false'])}`] : [flag]);
      } else if (flag.startsWith('--') && chance(0.3)) {
        items.push([`${flag}=${value(o)}`]);
      } else {
        const item = [flag, value(o)];
        if (o.array && chance(0.3)) item.push(value(o));
        if (chance(0.03)) item.pop();
        items.push(item);
      }
    }
  }
  if (chance(0.08)) items.push([pick(ODD)]);
  // Positionals: usually the right number, in order, anywhere between the flags.
  const count = spec.positionals.length + (chance(0.9) ? 0 : pick([-1, 1]));
  let at = 0;
  for (let i = 0; i < count; i++) {
    const p = spec.positionals[i] as PositionalSpec | undefined;
    const word = p?.dash && chance(0.2) ? '-' : chance(0.85) ? pick(WORDS.slice(0, 3)) : pick(WORDS);
    at = r.int(at, items.length);
    items.splice(at, 0, [word]);
    at++;
  }
  return [...command.split(' '), ...items.flat()];
}

describe('fastParse equals yargs configured from the same table', () => {
  it('on generated command lines, whenever it reads one', async () => {
    const r = prng(20250611);
    const seen = new Map<CommandName, number>();
    let fast = 0;
    // Enough lines that each command gets its share: 1200 over the one-word commands (the
    // same lines as before the fleet commands came), then 400 over the fleet's.
    const single = COMMAND_NAMES.filter((c) => !c.includes(' '));
    const fleet = COMMAND_NAMES.filter((c) => c.includes(' '));
    const N = 1600;
    for (let n = 0; n < N; n++) {
      const args = generate(r, n < 1200 ? single : fleet);
      const parsed = fastParse(args);
      if (!parsed) continue;
      fast++;
      seen.set(parsed.command, (seen.get(parsed.command) ?? 0) + 1);
      expect(await viaYargs(args), JSON.stringify(args)).toStrictEqual(parsed);
    }
    // The property has teeth only if the fast parser takes a good share of the lines.
    expect(fast).toBeGreaterThan(N / 4);
    for (const c of COMMAND_NAMES) expect(seen.get(c) ?? 0, c).toBeGreaterThan(20);
    // yargs is configured afresh for each line (about 20 ms each here); the whole suite shares two cores.
  }, 180_000);

  it('every option, in every spelling, is read by the fast parser', async () => {
    const need: Record<CommandName, string[]> = { info: ['i'], inspect: ['i'], convert: ['i', 'o'], translate: ['i', 'o', '-t', 'kvm'], verify: ['i'], catalog: ['l'], bundle: ['i', 'd'], unbundle: ['m', 'o'],
      'fleet run': ['w', '--out', 'o'], 'fleet submit': ['w', '--queue', 'redis://h', '--out', 'o'], 'fleet worker': ['--queue', 'redis://h'], 'fleet status': ['--queue', 'redis://h'], 'fleet report': ['--out', 'o'] };
    for (const command of COMMAND_NAMES) {
      for (const o of COMMANDS[command].options as readonly OptionSpec[]) {
        const value = o.choices ? o.choices[o.choices.length - 1]! : o.type === 'number' ? '3' : 'v=1';
        for (const n of [o.name, ...(o.alias ?? [])]) {
          const flag = n.length === 1 ? `-${n}` : `--${n}`;
          const spellings = o.type === 'boolean' ? [[flag]] : [[flag, value], ...(n.length > 1 ? [[`${flag}=${value}`]] : [])];
          for (const s of spellings) {
            const words = command.split(' ');
            // An option the command demands is given once: in its own spelling here, not in `need`.
            const base = [...need[command]];
            const at = base.indexOf(`--${o.name}`);
            if (at >= 0) base.splice(at, 2);
            const args = o.name === 'target' && command === 'translate' ? [...words, 'i', 'o', ...s] : [...words, ...base, ...s];
            const parsed = fastParse(args);
            expect(parsed, args.join(' ')).toBeDefined();
            const want = o.type === 'boolean' ? true : o.type === 'number' ? 3 : o.array ? [value] : value;
            expect(parsed!.argv[o.name], args.join(' ')).toStrictEqual(want);
            expect(await viaYargs(args), args.join(' ')).toStrictEqual(parsed);
          }
        }
      }
    }
  });
});

describe('the fast path does not load yargs', () => {
  let dir: TmpDir;
  beforeAll(async () => {
    dir = await tmpDir();
  });
  afterAll(async () => {
    await dir.remove();
  });

  // A module hook that makes any import of yargs fail, loaded before the binary.
  const hook = "export async function resolve(s, c, next) { if (s === 'yargs' || s.startsWith('yargs/')) throw new Error('yargs was loaded'); return next(s, c); }";
  const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
  const noYargs = ['--import', `data:text/javascript,${encodeURIComponent(register)}`];

  it('for every command; help (yargs) fails under the same hook', async () => {
    const zero = dir.file('zero.img');
    await writeFile(zero, Buffer.alloc(1 << 20));
    const info = await runBin(['info', zero, '--json'], dir.file('info.json'), noYargs);
    expect(info.stderr).toBe('');
    expect(info.code).toBe(0);
    const missing = dir.file('missing.img');
    for (const args of [
      ['inspect', missing, '--json'],
      ['convert', missing, dir.file('out.qcow2'), '-O', 'qcow2', '-o', 'compat=1.1'],
      ['translate', missing, dir.file('out.qcow2'), '--target', 'kvm', '--dry-run', '--skip', 'clean', 'network'],
    ]) {
      const r = await runBin(args, undefined, noYargs);
      expect(r.stderr, args.join(' ')).toMatch(/^amitrans: .*missing\.img.*ENOENT/);
      expect(r.code).toBe(1);
    }
    const help = await runBin(['info', '--help'], undefined, noYargs);
    expect(help.stderr).toContain('yargs was loaded');
    expect(help.code).not.toBe(0);
  });
});
