import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir, type TmpDir } from '@amitrans/testkit';
import { freePort, runBin } from './helpers.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(async () => {
  await dir.remove();
});

describe('fleet commands refuse bad input with one line and the right exit code', () => {
  it('a bad work list: exit 1, the file and line named, no stack, nothing written', async () => {
    const list = dir.file('bad.jsonl');
    await writeFile(list, '{"id":"ami-1","source":"a.img"}\n{"id":"ami-1","source":"b.img"}\n');
    const r = await runBin(['fleet', 'run', list, '--out', dir.file('out')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`amitrans: ${list}:2: image ami-1 is listed twice (first at line 1)\n`);
    const missing = await runBin(['fleet', 'run', dir.file('nope.jsonl'), '--out', dir.file('out')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^amitrans: ENOENT: no such file or directory, stat '.*nope\.jsonl'\n$/);
  });

  it('usage mistakes exit 2', async () => {
    const list = dir.file('ok.jsonl');
    await writeFile(list, '{"id":"ami-1","source":"a.img"}\n');
    for (const args of [
      ['fleet', 'run', list, '--out', dir.file('o'), '--verify-expect', 'x'],
      ['fleet', 'run', list, '--out', dir.file('o'), '--verify', '--verify-expect', '('],
      ['fleet', 'run', list, '--out', dir.file('o'), '--targets', 'kvm,hyperv'],
      ['fleet', 'run', list, '--out', dir.file('o'), '--formats', 'kvm'],
      ['fleet', 'run', list],
      ['fleet', 'bogus'],
      ['fleet', 'status', '--queue', 'http://x'],
    ]) {
      const r = await runBin(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^amitrans: .*\(see amitrans --help\)\n$/);
    }
  });

  it('no Redis at the address: exit 1 naming it, no hang', async () => {
    const port = await freePort();
    const r = await runBin(['fleet', 'status', '--queue', `redis://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^amitrans: redis://127.0.0.1:${port}: .*ECONNREFUSED.*\\n$`));
  }, 60_000);
});
