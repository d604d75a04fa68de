import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTools, run, tmpDir, type TmpDir } from '@amitrans/testkit';
import { maxQcow2Size } from '../src/limits.js';

// The size limit the writer enforces is the one qemu-img enforces: at the limit qemu-img
// creates the image, one cluster beyond it refuses.
let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(async () => {
  await dir.remove();
});

describe('maxQcow2Size agrees with qemu-img create', () => {
  for (const clusterBits of [12, 16]) {
    it(`${2 ** clusterBits}-byte clusters`, async (ctx) => {
      requireTools(ctx, 'qemu-img');
      const max = maxQcow2Size(clusterBits);
      const file = dir.file(`c${clusterBits}.qcow2`);
      const create = (size: number): Promise<unknown> => run('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `cluster_size=${2 ** clusterBits}`, file, String(size)]);
      await create(max);
      await expect(create(max + 2 ** clusterBits)).rejects.toThrow(/too large/);
    });
  }
});
