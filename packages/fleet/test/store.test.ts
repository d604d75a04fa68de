import { spawnSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partialName } from '@amitrans/block';
import { tmpDir, type TmpDir } from '@amitrans/testkit';
import { openStore } from '../src/index.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir('amitrans-fleet-store-');
});
afterAll(async () => {
  await dir.remove();
});

describe('the directory store', () => {
  it('a partial left by a SIGKILLed writer is removed by the next write of its key; a live writer\'s is kept; neither is listed', async () => {
    const final = dir.file('results/ami-1.json');
    await mkdir(dirname(final), { recursive: true });
    // Another process names its partial as every writer does, and is SIGKILLed mid-write.
    const script = "import { partialName } from '@amitrans/block'; import { writeFileSync } from 'node:fs'; writeFileSync(partialName(process.argv[1], 'dead'), 'half'); process.kill(process.pid, 'SIGKILL');";
    const killed = spawnSync(process.execPath, ['--input-type=module', '-e', script, final], { cwd: join(import.meta.dirname, '../../..') });
    expect(killed.signal, killed.stderr.toString()).toBe('SIGKILL');
    const live = partialName(final, 'live');
    await writeFile(live, 'still being written');
    expect(await readdir(dirname(final))).toHaveLength(2);
    const store = openStore(dir.path);
    expect(await store.list('results/')).toEqual([]);
    await store.putText('results/ami-1.json', '{}\n');
    expect((await readdir(dirname(final))).sort()).toEqual([basename(live), 'ami-1.json'].sort());
    expect(await store.list('results/')).toEqual(['results/ami-1.json']);
  });
});
