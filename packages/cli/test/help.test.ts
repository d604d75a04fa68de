import { describe, expect, it } from 'vitest';
import { COMMAND_NAMES, COMMANDS, type OptionSpec, type PositionalSpec } from '../src/options.js';
import { cli } from './helpers.js';

describe('--help is yargs configured from the option table', () => {
  for (const command of COMMAND_NAMES) {
    it(`${command} --help lists every positional, option, alias and choice of the table`, async () => {
      const r = await cli(...command.split(' '), '--help');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const spec = COMMANDS[command];
      // The describe texts wrap; their first words stay on the flag's line.
      const words = (text: string): string => text.split(' ').slice(0, 3).join(' ');
      expect(r.stdout).toContain(words(spec.describe));
      for (const p of spec.positionals) {
        expect(r.stdout).toMatch(new RegExp(`^  ${p.name} +${escape(words(p.describe))}`, 'm'));
      }
      for (const o of spec.options as readonly OptionSpec[]) {
        const flags = [o.name, ...(o.alias ?? [])].map((n) => (n.length === 1 ? `-${n}` : `--${n}`));
        for (const f of flags) expect(r.stdout, f).toMatch(new RegExp(`(^|[ ,])${escape(f)}[ ,]`, 'm'));
        // yargs shows `-t, --target  where...`: the long spelling last, then the text.
        const last = flags.reduce((a, b) => (b.length > a.length ? b : a));
        expect(r.stdout, o.name).toMatch(new RegExp(`${escape(last)} +${escape(words(o.describe))}`));
        for (const c of o.choices ?? []) expect(r.stdout, `${o.name} ${c}`).toContain(`"${c}"`);
        if (o.demandOption) expect(r.stdout).toContain('[required]');
      }
    });
  }

  it('amitrans --help lists every command', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    for (const command of COMMAND_NAMES) {
      // A two-word command is listed under its verb: `amitrans fleet <command>`, then `fleet --help` lists it.
      if (command.includes(' ')) continue;
      const usage = [command, ...(COMMANDS[command].positionals as readonly PositionalSpec[]).map((p) => (p.variadic ? (p.demand ? `<${p.name}..>` : `[${p.name}..]`) : `<${p.name}>`))].join(' ');
      expect(r.stdout).toContain(`amitrans ${usage}`);
    }
  });
});

it('amitrans fleet --help lists every fleet command', async () => {
  const top = await cli('--help');
  expect(top.stdout).toContain('amitrans fleet <command>');
  const r = await cli('fleet', '--help');
  expect(r.code).toBe(0);
  for (const command of COMMAND_NAMES.filter((c) => c.startsWith('fleet '))) {
    const usage = [command, ...(COMMANDS[command].positionals as readonly PositionalSpec[]).map((p) => `<${p.name}>`)].join(' ');
    expect(r.stdout).toContain(`amitrans ${usage}`);
  }
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
