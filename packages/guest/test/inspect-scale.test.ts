/**
 * Inspecting a 2 GiB filesystem reads its metadata and a few files, not its contents: the
 * real Debian kernel with its ~1100 module files, and a big /usr (thousands of files of
 * data, large sparse files) that inspection must not walk. Counted at the device.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inspectImage, readInitrdSummary } from '@amitrans/diskimg';
import {
  amazonLinuxGuest,
  buildGuestImage,
  CountingDevice,
  debRoot,
  prng,
  requireTools,
  run,
  tmpDir,
  type GuestTree,
  type TmpDir,
} from '@amitrans/testkit';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir('amitrans-inspect-scale-');
});
afterAll(async () => {
  await dir?.remove();
});

it('a 2 GiB filesystem with a real module tree and a big /usr: under 64 MiB read', async (ctx) => {
  requireTools(ctx, 'mkfs.ext3', 'cpio', 'gzip', 'dumpe2fs');
  const kroot = debRoot(ctx, 'linux-image-cloud-amd64');
  const [kver] = await readdir(join(kroot, 'lib/modules'));
  const fx = amazonLinuxGuest();
  const rnd = prng(2024);
  const usr: GuestTree = {};
  // ~40 MiB of incompressible file data in 2,400 files under 120 directories.
  for (let d = 0; d < 120; d++) {
    for (let f = 0; f < 20; f++) usr[`/usr/share/pkg${d}/file${f}.dat`] = rnd.bytes(16 * 1024);
  }
  for (let i = 0; i < 3; i++) usr[`/usr/lib/big${i}.img`] = { sparse: 400 * 1024 * 1024, head: rnd.bytes(64 * 1024) };
  Object.assign(fx.spec.files!, usr, {
    [`/boot/vmlinuz-${kver}`]: { copy: join(kroot, 'boot', `vmlinuz-${kver}`) },
    [`/boot/config-${kver}`]: { copy: join(kroot, 'boot', `config-${kver}`) },
    [`/lib/modules/${kver}`]: { copy: join(kroot, 'lib/modules', kver!) },
  });
  const img = dir.file('big.img');
  await buildGuestImage(fx.spec, img, { ...fx.image, type: 'ext3', size: '2G' });
  const blocks = /Block count:\s+(\d+)/.exec((await run('dumpe2fs', ['-h', img])).stdout)?.[1];
  const blockSize = /Block size:\s+(\d+)/.exec((await run('dumpe2fs', ['-h', img])).stdout)?.[1];
  expect(Number(blocks) * Number(blockSize)).toBe(2 * 1024 ** 3);
  const koFiles = (await run('find', [join(kroot, 'lib/modules', kver!), '-name', '*.ko*'])).stdout.trim().split('\n').length;

  let counted: CountingDevice | undefined;
  const res = await inspectImage(img, { wrapDevice: (d) => (counted = new CountingDevice(d)), readInitrd: readInitrdSummary });
  const r = res.report;
  expect(r.kernels.map((k) => [k.version, k.moduleCount])).toEqual([[fx.spec.kernels![0]!.version, 6], [kver, koFiles]].sort((a, b) => String(a[0]).localeCompare(String(b[0]))));
  expect(r.kernels.find((k) => k.version === kver)?.drivers.virtio_blk).toBe('module');
  expect(r.warnings).toEqual([]);
  expect(counted!.bytes).toBeLessThan(64 * 1024 * 1024);
  console.log(`inspect of a 2 GiB filesystem: ${(counted!.bytes / 1048576).toFixed(1)} MiB in ${counted!.reads} device reads`);
}, 180_000);
