import { chmod, chown, mkdir, open, readFile, symlink, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CowOverlay, FileDevice, ImageError, SliceDevice, type BlockDevice, type Range } from '@amitrans/block';
import { prng, requireTools, run, sha256File, tmpDir, type TmpDir } from '@amitrans/testkit';
import { ExtFs, ExtFsError, type ExtStat } from '../src/index.js';

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir('amitrans-extfs-');
});
afterAll(async () => {
  await dir.remove();
});

const KINDS = [
  { name: 'ext2', tool: 'mkfs.ext2', args: [] as string[] },
  { name: 'ext3-i128', tool: 'mkfs.ext3', args: ['-I', '128'] },
  { name: 'ext3', tool: 'mkfs.ext3', args: [] as string[] },
  { name: 'ext4', tool: 'mkfs.ext4', args: [] as string[] },
];

const LONG_TARGET = `/usr/share/${'very-long-directory-name/'.repeat(4)}target-file`;

/** The tree mkfs -d copies in: what a small guest root looks like. */
async function populate(root: string): Promise<void> {
  await mkdir(`${root}/etc`, { recursive: true });
  await mkdir(`${root}/usr/bin`, { recursive: true });
  await mkdir(`${root}/var/lib`, { recursive: true });
  await writeFile(`${root}/etc/hostname`, 'old-host\n');
  await chmod(`${root}/etc/hostname`, 0o600);
  await chown(`${root}/etc/hostname`, 33, 44);
  await writeFile(`${root}/etc/fstab`, '/dev/xvda1 / ext3 defaults 1 1\n');
  await writeFile(`${root}/etc/motd`, 'welcome\n');
  await symlink('hostname', `${root}/etc/link`);
  await writeFile(`${root}/usr/bin/tool`, Buffer.from(prng(7).bytes(70_000)));
  await chmod(`${root}/usr/bin/tool`, 0o755);
}

async function makeImage(name: string, tool: string, args: readonly string[]): Promise<string> {
  const root = dir.file(`${name}-root`);
  await populate(root);
  const path = dir.file(`${name}.img`);
  await run('truncate', ['-s', '16M', path]);
  await run(tool, ['-q', '-F', ...args, '-d', root, path]);
  return path;
}

/** Copy a device into a new file, so the oracles can read it. */
async function writeOut(device: BlockDevice, path: string, into?: { offset: number }): Promise<void> {
  const fh = await open(path, into ? 'r+' : 'w');
  try {
    const chunk = 1024 * 1024;
    for (let at = 0; at < device.size; at += chunk) {
      const buf = new Uint8Array(Math.min(chunk, device.size - at));
      await device.read(buf, at);
      await fh.write(buf, 0, buf.length, (into?.offset ?? 0) + at);
    }
  } finally {
    await fh.close();
  }
}

async function debugfs(image: string, request: string): Promise<string> {
  return (await run('debugfs', ['-R', request, image])).stdout;
}

interface DebugfsStat {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  fastLink?: string;
}

async function debugfsStat(image: string, path: string): Promise<DebugfsStat> {
  const out = await debugfs(image, `stat ${path}`);
  const head = /Type:\s+(\S+)\s+Mode:\s+(\d+)/.exec(out);
  const owner = /User:\s+(\d+)\s+Group:\s+(\d+)/.exec(out);
  const size = /Size:\s+(\d+)/.exec(out);
  if (!head || !owner || !size) throw new Error(`debugfs stat ${path} printed nothing usable:\n${out}`);
  const fast = /Fast link dest: "(.*)"/.exec(out);
  return {
    type: head[1]!,
    mode: parseInt(head[2]!, 8),
    uid: Number(owner[1]),
    gid: Number(owner[2]),
    size: Number(size[1]),
    ...(fast ? { fastLink: fast[1]! } : {}),
  };
}

/** Free blocks per `dumpe2fs` (the bitmaps): merged block ranges and each group's count. */
async function dumpe2fsFree(image: string): Promise<{ ranges: [number, number][]; groups: { first: number; last: number; free: number }[] }> {
  const { stdout } = await run('dumpe2fs', [image]);
  const ranges: [number, number][] = [];
  const groups: { first: number; last: number; free: number }[] = [];
  for (const line of stdout.split('\n')) {
    const g = /^Group \d+: \(Blocks (\d+)-(\d+)\)/.exec(line);
    if (g) groups.push({ first: Number(g[1]), last: Number(g[2]), free: -1 });
    const count = /^\s+(\d+) free blocks?, /.exec(line);
    if (count && groups.length > 0) groups[groups.length - 1]!.free = Number(count[1]);
    const list = /^\s+Free blocks: (.*)$/.exec(line);
    if (list) {
      for (const item of list[1]!.split(',').map((s) => s.trim()).filter(Boolean)) {
        const [a, b] = item.split('-').map(Number) as [number, number | undefined];
        const last = b ?? a;
        const prev = ranges[ranges.length - 1];
        if (prev && prev[1] + 1 === a) prev[1] = last;
        else ranges.push([a, last]);
      }
    }
  }
  return { ranges, groups };
}

function toBlocks(ranges: Range[], blockSize: number): [number, number][] {
  return ranges.map((r) => {
    expect(r.offset % blockSize).toBe(0);
    expect(r.length % blockSize).toBe(0);
    return [r.offset / blockSize, (r.offset + r.length) / blockSize - 1];
  });
}

async function expectFreeRangesMatch(fs: ExtFs, image: string): Promise<void> {
  const mine = toBlocks(await fs.freeRanges(), fs.blockSize);
  const oracle = await dumpe2fsFree(image);
  expect(mine).toEqual(oracle.ranges);
  for (const g of oracle.groups) {
    let n = 0;
    for (const [a, b] of mine) n += Math.max(0, Math.min(b, g.last) - Math.max(a, g.first) + 1);
    expect(n, `group ${g.first}-${g.last}`).toBe(g.free);
  }
}

async function expectError(p: Promise<unknown>, errno: string, path: string, code?: string): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err, `expected ${errno} for ${path}`).toBeInstanceOf(ExtFsError);
  const e = err as ExtFsError;
  expect(e).toBeInstanceOf(ImageError);
  expect(e.errno).toBe(errno);
  expect(e.path).toBe(path);
  expect(e.message).toContain(path);
  if (code) expect(e.code).toBe(code);
}

describe('ExtFs through libext2fs (WASM) against debugfs and e2fsck', () => {
  for (const kind of KINDS) {
    it(`${kind.name}: every operation, checked by debugfs, e2fsck -fn and dumpe2fs`, async (ctx) => {
      requireTools(ctx, kind.tool, 'debugfs', 'e2fsck', 'dumpe2fs');
      const source = await makeImage(kind.name, kind.tool, kind.args);
      const before = await sha256File(source);
      const file = await FileDevice.open(source);
      const big = prng(11).bytes(1_500_000); // more than one 1 MiB chunk
      const fs = await ExtFs.open(file, { writable: true });
      let newConf: ExtStat;
      try {
        // Reads of what mkfs -d put there.
        expect(await fs.readText('/etc/hostname')).toBe('old-host\n');
        expect((await fs.readdir('/etc')).sort()).toEqual(['fstab', 'hostname', 'link', 'motd']);
        expect(Buffer.from(await fs.readFile('/usr/bin/tool')).equals(Buffer.from(prng(7).bytes(70_000)))).toBe(true);
        expect(await fs.readlink('/etc/link')).toBe('hostname');
        expect(await fs.stat('/etc/link')).toMatchObject({ type: 'file', size: 9, permissions: 0o600, uid: 33, gid: 44 });
        expect(await fs.lstat('/etc/link')).toMatchObject({ type: 'symlink', size: 8 });
        expect(await fs.stat('/etc')).toMatchObject({ type: 'directory' });

        // Changes.
        await fs.writeFile('/etc/hostname', 'new-host\n', { mode: 0o777, uid: 1 }); // replace: mode/owner kept
        await fs.writeFile('/etc/new.conf', big, { mode: 0o640, uid: 1000, gid: 1001 });
        await fs.writeFile('/etc/empty', new Uint8Array(0));
        await fs.append('/etc/fstab', 'LABEL=root / ext4 defaults 0 1\n');
        await fs.append('/etc/appended', 'first\n', { mode: 0o600 });
        await fs.append('/etc/appended', 'second\n');
        await fs.mkdir('/opt/a/b/c', { recursive: true });
        await fs.mkdir('/opt/a/b/c', { recursive: true }); // idempotent
        await fs.mkdir('/srv', { mode: 0o700, uid: 5, gid: 6 });
        await fs.symlink('../etc/hostname', '/opt/hn');
        await fs.symlink(LONG_TARGET, '/opt/long');
        await fs.chmod('/usr/bin/tool', 0o4750);
        await fs.chown('/usr/bin/tool', 0, 50);
        await fs.rename('/etc/link', '/opt/a/link2');
        await fs.rename('/opt/a/b', '/srv/b');
        await fs.writeFile('/etc/motd.new', 'replaced\n');
        await fs.rename('/etc/motd.new', '/etc/fstab.d-free'); // plain move
        await fs.unlink('/etc/motd');
        await fs.mkdir('/var/many');
        for (let i = 0; i < 80; i++) await fs.writeFile(`/var/many/file-with-a-longish-name-${i}`, `${i}\n`);
        await fs.mkdir('/tmp');
        await fs.rmdir('/tmp');

        // Reads see the changes.
        expect(await fs.readText('/etc/hostname')).toBe('new-host\n');
        expect(await fs.stat('/etc/hostname')).toMatchObject({ permissions: 0o600, uid: 33, gid: 44, size: 9 });
        expect(Buffer.from(await fs.readFile('/etc/new.conf')).equals(Buffer.from(big))).toBe(true);
        expect(await fs.readText('/etc/appended')).toBe('first\nsecond\n');
        expect(await fs.readlink('/opt/long')).toBe(LONG_TARGET);
        expect(await fs.readText('/opt/hn')).toBe('new-host\n');
        expect(await fs.exists('/etc/motd')).toBe(false);
        expect(await fs.exists('/opt/long')).toBe(true); // dangling, still there
        expect(await fs.exists('/srv/b/c')).toBe(true);
        expect((await fs.readdir('/var/many')).length).toBe(80);
        expect(await fs.stat('/srv')).toMatchObject({ type: 'directory', permissions: 0o700, uid: 5, gid: 6 });
        newConf = await fs.stat('/etc/new.conf');
        expect(Math.abs(newConf.mtime.getTime() - Date.now())).toBeLessThan(60_000);

        // Errors carry the guest path.
        await expectError(fs.readFile('/etc/nope'), 'ENOENT', '/etc/nope', 'E_IO');
        await expectError(fs.readFile('/etc'), 'EISDIR', '/etc');
        await expectError(fs.writeFile('/no/such/dir/x', 'x'), 'ENOENT', '/no/such/dir');
        await expectError(fs.writeFile('/etc/hostname/x', 'x'), 'ENOTDIR', '/etc/hostname');
        await expectError(fs.writeFile('/etc', 'x'), 'EISDIR', '/etc');
        await expectError(fs.mkdir('/etc'), 'EEXIST', '/etc');
        await expectError(fs.mkdir('/etc/hostname/sub', { recursive: true }), 'ENOTDIR', '/etc/hostname');
        await expectError(fs.unlink('/etc'), 'EISDIR', '/etc');
        await expectError(fs.rmdir('/srv'), 'ENOTEMPTY', '/srv');
        await expectError(fs.readdir('/etc/fstab'), 'ENOTDIR', '/etc/fstab');
        await expectError(fs.readlink('/etc/fstab'), 'EINVAL', '/etc/fstab');
        await expectError(fs.symlink('x', '/etc/fstab'), 'EEXIST', '/etc/fstab');
        await expectError(fs.chown('/etc/fstab', 70000, 0), 'EINVAL', '/etc/fstab', 'E_UNSUPPORTED');
        await expectError(fs.rename('/srv', '/srv/b/inside'), 'EINVAL', '/srv/b/inside');
        await expectError(fs.stat('relative/path'), 'EINVAL', 'relative/path');
        await expectError(fs.stat('/etc/../etc'), 'EINVAL', '/etc/../etc');

        // Free ranges of the live, unflushed state equal those after a flush.
        const live = await fs.freeRanges();
        await fs.flush();
        expect(await fs.freeRanges()).toEqual(live);
      } finally {
        await fs.close();
      }
      await expect(fs.readFile('/etc/hostname')).rejects.toMatchObject({ code: 'E_CLOSED' });

      // The source is untouched; the result lives in the overlay.
      const out = dir.file(`${kind.name}-out.img`);
      await writeOut(fs.device, out);
      await file.close();
      expect(await sha256File(source)).toBe(before);

      await run('e2fsck', ['-fn', out]); // rejects on any non-zero exit
      expect(await debugfs(out, 'cat /etc/hostname')).toBe('new-host\n');
      expect(Buffer.from(await debugfs(out, 'cat /etc/fstab'), 'latin1').toString())
        .toBe('/dev/xvda1 / ext3 defaults 1 1\nLABEL=root / ext4 defaults 0 1\n');
      expect(await debugfs(out, 'cat /etc/appended')).toBe('first\nsecond\n');
      expect(await debugfs(out, 'cat /etc/fstab.d-free')).toBe('replaced\n');
      expect(await debugfs(out, 'cat /var/many/file-with-a-longish-name-79')).toBe('79\n');
      const dumped = dir.file(`${kind.name}-new.conf`);
      await run('debugfs', ['-R', `dump /etc/new.conf ${dumped}`, out]);
      expect((await readFile(dumped)).equals(Buffer.from(big))).toBe(true);
      expect(await debugfs(out, 'cat /opt/long')).toBe(LONG_TARGET); // slow symlink: its block holds the target

      const mtime = /\bmtime: 0x([0-9a-f]+)/.exec(await debugfs(out, 'stat /etc/new.conf'));
      expect(Number.parseInt(mtime![1]!, 16)).toBe(newConf.mtime.getTime() / 1000);
      expect(await debugfsStat(out, '/etc/hostname')).toEqual({ type: 'regular', mode: 0o600, uid: 33, gid: 44, size: 9 });
      expect(await debugfsStat(out, '/etc/new.conf'))
        .toEqual({ type: 'regular', mode: 0o640, uid: 1000, gid: 1001, size: big.length });
      expect(await debugfsStat(out, '/etc/empty')).toEqual({ type: 'regular', mode: 0o644, uid: 0, gid: 0, size: 0 });
      expect(await debugfsStat(out, '/etc/appended')).toMatchObject({ type: 'regular', mode: 0o600, size: 13 });
      expect(await debugfsStat(out, '/usr/bin/tool')).toEqual({ type: 'regular', mode: 0o4750, uid: 0, gid: 50, size: 70_000 });
      expect(await debugfsStat(out, '/srv')).toMatchObject({ type: 'directory', mode: 0o700, uid: 5, gid: 6 });
      expect(await debugfsStat(out, '/srv/b/c')).toMatchObject({ type: 'directory', mode: 0o755 });
      expect(await debugfsStat(out, '/opt/hn'))
        .toEqual({ type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 15, fastLink: '../etc/hostname' });
      expect(await debugfsStat(out, '/opt/a/link2')).toMatchObject({ type: 'symlink', fastLink: 'hostname' });
      expect(await debugfsStat(out, '/opt/long')).toMatchObject({ type: 'symlink', size: LONG_TARGET.length });
      for (const gone of ['/etc/motd', '/etc/link', '/opt/a/b', '/tmp']) {
        await expect(debugfs(out, `stat ${gone}`)).resolves.not.toMatch(/Inode:/);
      }

      // Free ranges, read back from the result and from the untouched source, equal dumpe2fs.
      for (const image of [out, source]) {
        const dev = await FileDevice.open(image);
        const ro = await ExtFs.open(dev);
        try {
          await expectFreeRangesMatch(ro, image);
        } finally {
          await ro.close();
          await dev.close();
        }
      }
    });
  }

  it('read-only: refuses changes, writes nothing, even to an overlay it was given', async (ctx) => {
    requireTools(ctx, 'mkfs.ext4');
    const source = await makeImage('ro', 'mkfs.ext4', []);
    const file = await FileDevice.open(source);
    const overlay = new CowOverlay(file);
    const fs = await ExtFs.open(overlay);
    try {
      expect(fs.writable).toBe(false);
      expect(fs.device).not.toBe(overlay);
      expect(await fs.readText('/etc/fstab')).toContain('/dev/xvda1');
      await expectError(fs.writeFile('/etc/fstab', 'x'), 'EROFS', '/etc/fstab', 'E_READ_ONLY');
      await expectError(fs.mkdir('/x'), 'EROFS', '/x', 'E_READ_ONLY');
    } finally {
      await fs.close();
    }
    expect(overlay.dirtyBytes).toBe(0);
    await file.close();
  });

  it('writes into the overlay the caller passes, for a filesystem inside an MBR partition', async (ctx) => {
    requireTools(ctx, 'mkfs.ext3', 'sfdisk', 'e2fsck', 'debugfs');
    const disk = dir.file('part-disk.img');
    await run('truncate', ['-s', '40M', disk]);
    await run('sfdisk', ['-q', disk], { input: 'start=2048, size=65536, type=83\n' });
    const start = 2048 * 512;
    await run('mkfs.ext3', ['-q', '-F', '-E', `offset=${start}`, disk, '32M']);
    const before = await sha256File(disk);
    const file = await FileDevice.open(disk);
    const part = new SliceDevice(file, start, 65536 * 512);
    const overlay = new CowOverlay(part);
    const fs = await ExtFs.open(part, { writable: true, overlay });
    expect(fs.device).toBe(overlay);
    await fs.mkdir('/etc');
    await fs.writeFile('/etc/hostname', 'partitioned\n');
    await fs.close();
    expect(overlay.dirtyBytes).toBeGreaterThan(0);
    const out = dir.file('part-out.img');
    await run('cp', [disk, out]);
    await writeOut(overlay, out, { offset: start });
    await file.close();
    expect(await sha256File(disk)).toBe(before);
    await run('e2fsck', ['-fn', `${out}?offset=${start}`]);
    expect(await debugfs(`${out}?offset=${start}`, 'cat /etc/hostname')).toBe('partitioned\n');
    await expect(ExtFs.open(part, { writable: true, overlay: new CowOverlay(file) })).rejects.toMatchObject({ code: 'E_BAD_OFFSET' });
  });

  it('refuses to open what is not a sane ext filesystem, with a typed error', async (ctx) => {
    requireTools(ctx, 'mkfs.ext2');
    const source = await makeImage('bad', 'mkfs.ext2', []);
    const img = Buffer.from(await readFile(source));
    img.writeUInt16LE(0, 1024 + 0x38);
    const broken = dir.file('bad-magic.img');
    await writeFile(broken, img);
    const dev = await FileDevice.open(broken);
    await expect(ExtFs.open(dev)).rejects.toMatchObject({ code: 'E_BAD_MAGIC' });
    await dev.close();
    // needs_recovery: reading is allowed, editing is not.
    img.writeUInt16LE(0xef53, 1024 + 0x38);
    img.writeUInt32LE(img.readUInt32LE(1024 + 0x5c) | 0x4, 1024 + 0x5c);
    img.writeUInt32LE(img.readUInt32LE(1024 + 0x60) | 0x4, 1024 + 0x60);
    const dirty = dir.file('needs-recovery.img');
    await writeFile(dirty, img);
    const dev2 = await FileDevice.open(dirty);
    await expect(ExtFs.open(dev2, { writable: true })).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    await dev2.close();
  });
});
