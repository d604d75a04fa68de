import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir, writeSparseImage, type TmpDir } from '@amitrans/testkit';

// The AWS SDK takes about a fifth of a second to load, as long as the rest of a local
// command's start-up. Every command imports @amitrans/remote (to tell a URL from a path),
// so the SDK must be loaded on first S3 use only. A module loader hook records every
// module the process loads: the oracle is Node's own loader, not our code.
const root = join(import.meta.dirname, '../../..');
const COMMAND = join(root, 'packages/cli/dist/amitrans.mjs');
const REMOTE = pathToFileURL(join(root, 'packages/remote/dist/index.js')).href;
const DISKIMG = pathToFileURL(join(root, 'packages/diskimg/dist/index.js')).href;

const HOOKS = `import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function load(url, context, next) {
  appendFileSync(log, url + '\\n');
  return next(url, context);
}
`;
const REGISTER = `import { register } from 'node:module';
register('./hooks.mjs', import.meta.url, { data: { log: process.env.AMITRANS_LOAD_LOG } });
`;

let dir: TmpDir;
let runs = 0;

beforeAll(async () => {
  dir = await tmpDir();
  await writeFile(dir.file('hooks.mjs'), HOOKS);
  await writeFile(dir.file('register.mjs'), REGISTER);
  await writeSparseImage(dir.file('disk.img'), 8 * 1024 * 1024, 7);
});
afterAll(() => dir?.remove());

/** Run node with the recording hook; the URLs of every module it loaded. */
async function loaded(args: string[]): Promise<{ code: number | null; stderr: string; urls: string[] }> {
  const log = dir.file(`loads-${runs++}.txt`);
  await writeFile(log, '');
  const child = spawn(process.execPath, ['--import', pathToFileURL(dir.file('register.mjs')).href, ...args], {
    env: { ...process.env, AMITRANS_LOAD_LOG: log },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  return { code, stderr, urls: (await readFile(log, 'utf8')).split('\n').filter(Boolean) };
}

const sdk = (urls: string[]): string[] => urls.filter((u) => u.includes('@aws-sdk') || u.includes('@smithy'));

describe('local commands never load the AWS SDK', () => {
  it('the hook sees the SDK when S3 is reached (the check can fail)', async () => {
    const r = await loaded(['--input-type=module', '-e', `const r = await import(${JSON.stringify(REMOTE)}); await r.loadS3Sdk();`]);
    expect(r.code, r.stderr).toBe(0);
    expect(sdk(r.urls).length).toBeGreaterThan(0);
  });

  it('amitrans info and convert of a local image', async () => {
    for (const args of [['info', dir.file('disk.img')], ['convert', dir.file('disk.img'), dir.file(`out-${runs}.qcow2`)]]) {
      const r = await loaded([COMMAND, ...args]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.urls).toContain(pathToFileURL(COMMAND).href);
      expect(sdk(r.urls)).toEqual([]);
    }
  });

  it('@amitrans/diskimg opening a local image', async () => {
    const script = `const d = await import(${JSON.stringify(DISKIMG)});
const img = await d.openImage(${JSON.stringify(dir.file('disk.img'))});
if (img.disk.size !== 8 * 1024 * 1024) throw new Error('wrong size');
await img.close();`;
    const r = await loaded(['--input-type=module', '-e', script]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.urls).toContain(DISKIMG);
    expect(r.urls.some((u) => u.includes('/packages/remote/dist/'))).toBe(true);
    expect(sdk(r.urls)).toEqual([]);
  });
});
