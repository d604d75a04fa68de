import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projects } from '../../../vitest.workspace.js';

const root = join(import.meta.dirname, '../../..');

describe('vitest workspace', () => {
  it('lists every package under packages/, and nothing else', async () => {
    const dirs = [];
    for (const name of await readdir(join(root, 'packages'))) {
      if ((await stat(join(root, 'packages', name))).isDirectory()) dirs.push(name);
    }
    expect([...projects].sort()).toEqual(dirs.sort());
  });
  it('every listed package has tests', async () => {
    for (const name of projects) {
      const files = await readdir(join(root, 'packages', name, 'test')).catch(() => []);
      expect(files.filter((f) => f.endsWith('.test.ts')), `packages/${name}/test`).not.toEqual([]);
    }
  });
});
