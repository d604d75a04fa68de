import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amazonLinuxGuest, buildGuestImage, qemuImgCheck, requireTools, tmpDir, type TmpDir } from '@amitrans/testkit';
import { inspectOpened, openImage, translate } from '../src/index.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir('amitrans-translate-inspected-');
});
afterAll(async () => {
  await dir.remove();
});

// The fleet opens and inspects each image once, then translates it for each target.
describe('translate of an image already open and inspected', () => {
  it('uses the given report instead of inspecting again, reads the open image and leaves it open', async (ctx) => {
    requireTools(ctx, 'mkfs.ext3', 'depmod', 'cpio', 'qemu-img');
    const g = amazonLinuxGuest();
    const ami = dir.file('amzn.img');
    await buildGuestImage(g.spec, ami, g.image);
    const img = await openImage(ami);
    try {
      const { report } = await inspectOpened(img);
      const out = dir.file('amzn.qcow2');
      const r = await translate(ami, out, { target: 'kvm', image: img, report, clean: [] });
      expect(r.report).toBe(report);
      expect(r.changes.length).toBeGreaterThan(0);
      expect((await qemuImgCheck(out, 'qcow2')).code).toBe(0);
      // Still open: a second target reads the same image.
      const xen = await translate(ami, dir.file('amzn.vhd'), { target: 'xenserver', image: img, report, clean: [] });
      expect(xen.report).toBe(report);
    } finally {
      await img.close();
    }
  });
});
