import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FileDevice } from '@amitrans/block';
import { amazonLinuxGuest, buildGuestImage, debRoot, qemuImgCheck, qemuImgCompare, requireTools, sha256File, tmpDir, UserFileSink, type TmpDir } from '@amitrans/testkit';
import { imageInfo, inspectImage, inspectOpened, openImage, translate, type TranslateOptions } from '../src/index.js';

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

// The library's other way in and out: a device the caller opened, a Sink the caller wrote.
describe('a BlockDevice input and a Sink output', () => {
  it('imageInfo and inspectImage of a device say what they say of the path (the file named as given)', async (ctx) => {
    requireTools(ctx, 'mkfs.ext3', 'depmod', 'cpio');
    const ami = await amazonAmi();
    const device = await FileDevice.open(ami);
    try {
      const [info, byPath] = [await imageInfo(device), await imageInfo(ami)];
      expect(info).toEqual({ ...byPath, file: '<device>' });
      const [inspected, inspectedByPath] = [await inspectImage(device, { name: 'amzn' }), await inspectImage(ami)];
      expect(inspected).toEqual({ ...inspectedByPath, file: 'amzn' });
      await device.read(new Uint8Array(512), 0);
    } finally {
      await device.close();
    }
  });

  it('translate from a device into sinks: raw (append-only) the bytes of the translation by path, qcow2 (seekable) the same disk; a dry run and a refusal abort the sink', async (ctx) => {
    requireTools(ctx, 'mkfs.ext3', 'depmod', 'cpio', 'qemu-img');
    const ami = await amazonAmi();
    // No clean step (new host keys are random), and one clock: the edits stamp inode times.
    const options: TranslateOptions = { target: 'kvm', clean: [] };
    const device = await FileDevice.open(ami);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(new Date(1_700_000_000_000));
      await translate(ami, dir.file('by-path.img'), { ...options, format: 'raw' });
      const raw = await UserFileSink.create(dir.file('sink.img'), { seekable: false });
      const r = await translate(device, raw, { ...options, format: 'raw', name: 'amzn' });
      expect([raw.commits, raw.aborts, r.input, r.output, r.format, r.layout]).toEqual([1, 0, 'amzn', '<sink>', 'raw', 'disk']);
      expect(await sha256File(raw.file)).toBe(await sha256File(dir.file('by-path.img')));
      const qcow2 = await UserFileSink.create(dir.file('sink.qcow2'), { seekable: true });
      await translate(device, qcow2, { ...options, format: 'qcow2' });
      expect([qcow2.commits, qcow2.aborts]).toEqual([1, 0]);
      // The qcow2 writer's cluster order is not reproducible from run to run: the disks are compared.
      expect((await qemuImgCheck(qcow2.file, 'qcow2')).code).toBe(0);
      expect(await qemuImgCompare(qcow2.file, 'qcow2', dir.file('by-path.img'), 'raw')).toBe(true);
    } finally {
      vi.useRealTimers();
    }
    try {
      const dry = await UserFileSink.create(dir.file('dry.img'), { seekable: true });
      expect((await translate(device, dry, { ...options, format: 'raw', dryRun: true })).changes.length).toBeGreaterThan(0);
      const unnamed = await UserFileSink.create(dir.file('unnamed.img'), { seekable: true });
      await expect(translate(device, unnamed, options)).rejects.toMatchObject({ code: 'E_USAGE' });
      for (const s of [dry, unnamed]) expect([s.commits, s.aborts]).toEqual([0, 1]);
      // Still the caller's: open after all of it.
      await device.read(new Uint8Array(512), 0);
    } finally {
      await device.close();
    }
  });
});
