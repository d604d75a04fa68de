import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// `npm ci && npm run build` (what the README's commands run) leaves a working
// node_modules/.bin/amitrans: npm links the bin at install time, before dist/ exists, so the
// bin is a committed file that loads the build.
const root = join(import.meta.dirname, '../../..');

describe('the amitrans command after npm ci and npm run build', () => {
  it('node_modules/.bin/amitrans is the committed launcher, and runs the build', () => {
    const link = join(root, 'node_modules/.bin/amitrans');
    expect(realpathSync(link)).toBe(realpathSync(join(root, 'packages/cli/bin/amitrans.mjs')));
    const r = spawnSync(link, ['info', '--help'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('amitrans info <image>');
  });

  it('npx amitrans finds it without installing anything', () => {
    const r = spawnSync('npx', ['--no-install', 'amitrans', '--help'], { cwd: root, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('amitrans catalog');
  });
});
