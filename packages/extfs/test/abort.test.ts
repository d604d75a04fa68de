import { mkdir, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDevice } from '@amitrans/block';
import { requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import { ExtFs, ExtFsError } from '../src/index.js';

// Issue 22: a WASM abort inside libext2fs (here Aborted(OOM) on a 16 MB path; a walk
// around a directory hard-link cycle once reached) is an ImageError naming the guest path,
// not a RuntimeError with a wasm stack; and the module, whose state is undefined after an
// abort, answers every later call with the same error instead of wrong answers.
// (Its own file: the abort is for the whole process, and vitest forks one per file.)
let dir: TmpDir;
let image: string;
beforeAll(async () => {
  dir = await tmpDir();
  const root = dir.file('root');
  await mkdir(`${root}/var/log`, { recursive: true });
  await writeFile(`${root}/var/log/messages`, 'hello\n');
  image = dir.file('fs.img');
  await run('mkfs.ext4', ['-q', '-F', '-d', root, image, '8M']);
});
afterAll(async () => {
  await dir.remove();
});

describe('a libext2fs abort', () => {
  it('is an ExtFsError naming the path, and later calls fail the same way', async (ctx) => {
    requireTools(ctx, 'mkfs.ext4');
    const fs = await ExtFs.open(await FileDevice.open(image));
    expect((await fs.lstat('/var/log/messages')).type).toBe('file');
    const deep = `/var/${'x'.repeat(16 * 1024 * 1024)}`;
    const err: unknown = await fs.lstat(deep).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExtFsError);
    const e = err as ExtFsError;
    expect(e.code).toBe('E_CORRUPT');
    expect(e.errno).toBe('EABORT');
    expect(e.path).toBe(deep);
    expect(e.message).toMatch(/libext2fs aborted \(Aborted\(OOM\)\)/);
    const later: unknown = await fs.lstat('/var/log/messages').catch((x: unknown) => x);
    expect(later).toBeInstanceOf(ExtFsError);
    expect((later as ExtFsError).message).toMatch(/^ext filesystem: \/var\/log\/messages: libext2fs aborted earlier/);
  }, 120_000);
});
