import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amazonLinuxGuest, buildGuestImage, debRoot, qemuImgCheck, requireTools, tmpDir, type TmpDir } from '@amitrans/testkit';
import { inspectOpened, openImage, translate } from '../src/index.js';

let dir: TmpDir;
let built: Promise<string> | undefined;
beforeAll(async () => {
  dir = await tmpDir('amitrans-translate-inspected-');
});

/** The Amazon Linux style guest (GRUB legacy in /boot/grub), built once for the file. */
function amazonAmi(): Promise<string> {
  built ??= (async () => {
    const g = amazonLinuxGuest();
    const ami = dir.file('amzn.img');
    await buildGuestImage(g.spec, ami, g.image);
    return ami;
  })();
  return built;
}
afterAll(async () => {
  await dir.remove();
});

// The fleet opens and inspects each image once, then translates it for each target.
describe('translate of an image already open and inspected', () => {
  it('uses the given report instead of inspecting again, reads the open image and leaves it open', async (ctx) => {
    requireTools(ctx, 'mkfs.ext3', 'depmod', 'cpio', 'qemu-img');
    const ami = await amazonAmi();
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

  it("inspects with the run's --bootloader/--grub-dir, so its verdicts are the ones translate acts on", async (ctx) => {
    requireTools(ctx, 'mkfs.ext3', 'depmod', 'cpio');
    const ami = await amazonAmi();
    const grubDir = `${debRoot(ctx, 'grub-legacy')}/usr/lib/grub/x86_64-pc`;
    const img = await openImage(ami);
    try {
      const kvm = (r: { verdicts: { target: string; changes: string[] }[] }): string => r.verdicts.find((v) => v.target === 'kvm')!.changes.join('\n');
      // No GRUB in the guest: GRUB 2 from the host unless the run gives its own.
      const plain = (await inspectOpened(img)).report;
      const given = (await inspectOpened(img, { grubDir })).report;
      expect(kvm(plain)).toMatch(/install GRUB 2 from \/usr\/lib\/grub2?\/i386-pc/);
      expect(kvm(given)).toContain(`install GRUB legacy from ${grubDir}`);
      // translate inspecting on its own with the same option reaches the same verdicts.
      const own = await translate(ami, dir.file('dry.raw'), { target: 'kvm', grubDir, dryRun: true, clean: [] });
      expect(own.report.verdicts).toEqual(given.verdicts);
    } finally {
      await img.close();
    }
  });
});
