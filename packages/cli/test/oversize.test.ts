import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuestImage, centos5Guest, debRoot, tmpDir, type TmpDir } from '@amitrans/testkit';
import { cli } from './helpers.js';

// Issue 22: a 50 MB /etc/fstab used to stop translate; now the step skips it with a
// warning in the change report and the rest of the translation goes on.
let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(async () => {
  await dir.remove();
});

describe('an oversized config file is skipped with a warning', () => {
  it('a 50 MB /etc/fstab: translate succeeds, the report says it was not edited', async (ctx) => {
    const g = centos5Guest({ plainKernel: true });
    const fstab = g.spec.files!['/etc/fstab'] as string;
    const ami = dir.file('big-fstab.img');
    await buildGuestImage({ ...g.spec, files: { ...g.spec.files, '/etc/fstab': { sparse: 50 * 1024 * 1024, head: fstab } } }, ami, g.image);
    const grubDir = `${debRoot(ctx, 'grub-legacy')}/usr/lib/grub/x86_64-pc`;
    const r = await cli('translate', ami, dir.file('out.qcow2'), '-t', 'kvm', '--grub-dir', grubDir, '--json');
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { changes: { step: string; file: string; action: string; why: string }[] };
    expect(result.changes).toContainEqual({ step: 'fstab', file: '/etc/fstab', action: 'skip', why: expect.stringMatching(/larger than 1 MiB, so not edited .*check it by hand/) });
    // The other steps still ran.
    expect(result.changes.some((c) => c.step === 'bootloader' && c.action === 'edit')).toBe(true);
  });
});
