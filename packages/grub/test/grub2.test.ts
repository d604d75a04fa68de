import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng, requireTools, run, sfdiskImage, tmpDir, type TmpDir } from '@amitrans/testkit';
import { ImageError } from '@amitrans/block';
import {
  DECOMPRESSOR,
  checkModule,
  grub2BootSectors,
  grub2Config,
  grub2Core,
  kernelRawImage,
  loadGrub2Files,
  lzmaRawDecompress,
  parseModdep,
  resolveModules,
  type Grub2Files,
} from '../src/index.js';

/** Debian's grub-pc-bin (scripts/setup-test-env.sh installs it): the oracle and the files. */
const I386 = '/usr/lib/grub/i386-pc';
const BIOS_SETUP = `${I386}/grub-bios-setup`;

let dir: TmpDir;
beforeAll(async () => {
  dir = await tmpDir();
});
afterAll(async () => {
  await dir.remove();
});

function requireGrub2(ctx: { skip: (note?: string) => void }): void {
  requireTools(ctx, 'grub-mkimage', 'sfdisk', 'unshare', 'xz', 'readelf');
  if (!existsSync(BIOS_SETUP)) requireTools(ctx, BIOS_SETUP);
}

async function hostFiles(): Promise<Grub2Files> {
  return loadGrub2Files(async (name) => readFile(`${I386}/${name}`).catch(() => undefined), I386);
}

async function mkimage(prefix: string, modules: string[], config?: string): Promise<Buffer> {
  const out = dir.file(`mk-${Math.random().toString(36).slice(2)}.img`);
  const args = ['-O', 'i386-pc', '-o', out, '-p', prefix];
  if (config !== undefined) {
    await writeFile(`${out}.cfg`, config);
    args.push('-c', `${out}.cfg`);
  }
  await run('grub-mkimage', [...args, ...modules]);
  return readFile(out);
}

/** grub-bios-setup on a file, without loop devices (grub2.md §6). */
async function biosSetup(disk: string, core: Uint8Array, extra: string[] = []): Promise<Buffer> {
  const d = dir.file(`setup-${Math.random().toString(36).slice(2)}`);
  await run('mkdir', ['-p', d]);
  await writeFile(`${d}.core`, core);
  await writeFile(`${d}.map`, `(hd0) ${disk}\n`);
  await run('unshare', ['-m', 'sh', '-c',
    `mount -t tmpfs "$1" "$2" && cp ${I386}/boot.img "$2/" && cp "$2.core" "$2/core.img" && ${BIOS_SETUP} ${extra.join(' ')} -d "$2" -m "$2.map" "$1"`, 'sh', disk, d]);
  return readFile(disk);
}

async function xzRawDecode(raw: Uint8Array, size: number): Promise<Buffer> {
  const f = dir.file(`payload-${Math.random().toString(36).slice(2)}`);
  await writeFile(f, raw);
  // xz stops at the end marker LZMA-JS writes; anything past the uncompressed size is not GRUB's.
  const { stdout } = await run('sh', ['-c', `xz -dc --format=raw --lzma1=lc=3,lp=0,pb=2,dict=64KiB "$1" | base64 -w0`, 'sh', f]);
  return Buffer.from(stdout, 'base64').subarray(0, size);
}

const variants = [
  { prefix: '(,msdos1)/boot/grub', modules: ['ext2', 'part_msdos', 'biosdisk'] },
  { prefix: '(hd0,msdos1)/boot/grub', modules: ['biosdisk', 'part_msdos', 'ext2'] },
  { prefix: '/boot/grub', modules: ['ext2', 'part_msdos', 'biosdisk', 'search_fs_uuid'], config: "search.fs_uuid 0123-4567 root hd0,msdos1\nset prefix=($root)'/boot/grub'\n" },
];

describe('core.img equals grub-mkimage -O i386-pc', () => {
  for (const v of variants) {
    it(`${v.prefix} ${v.modules.join(' ')}${v.config ? ' + config' : ''}`, async (ctx) => {
      requireGrub2(ctx);
      const files = await hostFiles();
      const ref = await mkimage(v.prefix, v.modules, v.config);
      const ours = await grub2Core(files, { prefix: v.prefix, modules: v.modules, ...(v.config ? { config: v.config } : {}) });
      const head = 512 + files.lzmaDecompress.length;
      const size = ref.readUInt32LE(512 + DECOMPRESSOR.UNCOMPRESSED_SIZE);
      // Headers byte for byte, except the compressed size (its value depends on the encoder).
      const mask = (b: Uint8Array): Buffer => {
        const c = Buffer.from(b.subarray(0, head));
        c.fill(0, 512 + DECOMPRESSOR.COMPRESSED_SIZE, 512 + DECOMPRESSOR.COMPRESSED_SIZE + 4);
        c.fill(0, 0x1fc, 0x1fe); // the sector count, compared below
        return c;
      };
      expect(mask(ours.core).equals(mask(ref))).toBe(true);
      expect(Buffer.from(ours.core).readUInt16LE(0x1fc)).toBe(Math.ceil((ours.core.length - 512) / 512));
      expect(Buffer.from(ours.core).readUInt32LE(512 + DECOMPRESSOR.COMPRESSED_SIZE)).toBe(ours.core.length - head);
      // The payloads: grub-mkimage's decoded, ours decoded by xz (an independent decoder).
      const refPayload = lzmaRawDecompress(ref.subarray(head), size);
      expect(Buffer.from(ours.payload).equals(Buffer.from(refPayload))).toBe(true);
      expect((await xzRawDecode(ours.core.subarray(head), size)).equals(Buffer.from(refPayload))).toBe(true);
      expect(ours.core[head]).toBe(0); // a raw LZMA1 stream starts with the range coder's 0
    });
  }

  it('the module order is grub-mkimage\'s (util/resolve.c)', async (ctx) => {
    requireGrub2(ctx);
    const deps = parseModdep(await readFile(`${I386}/moddep.lst`, 'utf8'));
    expect(resolveModules(['ext2', 'part_msdos', 'biosdisk'], deps)).toEqual(['fshelp', 'ext2', 'part_msdos', 'biosdisk']);
    expect(resolveModules(['biosdisk', 'part_msdos', 'ext2'], deps)).toEqual(['biosdisk', 'part_msdos', 'fshelp', 'ext2']);
    expect(resolveModules(['a'], new Map([['a', ['b', 'c']], ['b', ['c']], ['c', []]]))).toEqual(['c', 'b', 'a']);
  });

  it('kernel.img raw image ends at _edata (readelf)', async (ctx) => {
    requireGrub2(ctx);
    const k = kernelRawImage(await readFile(`${I386}/kernel.img`));
    const { stdout } = await run('readelf', ['-SW', `${I386}/kernel.img`]);
    const m = /\s\.data\s+PROGBITS\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)/.exec(stdout);
    expect(m).not.toBeNull();
    expect(k.length).toBe(Number.parseInt(m![1]!, 16) + Number.parseInt(m![2]!, 16) - 0x9000);
  });
});

interface SetupCase {
  name: string;
  start: number;
  rs: boolean;
}
const setups: SetupCase[] = [
  { name: 'partition at 2048, Reed-Solomon', start: 2048, rs: true },
  { name: 'partition at 2048, --no-rs-codes', start: 2048, rs: false },
  { name: 'partition at 63', start: 63, rs: true },
];

async function freshDisk(start: number): Promise<string> {
  const disk = dir.file(`disk-${start}-${Math.random().toString(36).slice(2)}.img`);
  await sfdiskImage(disk, 8 * 1024 * 1024, `label: dos\nlabel-id: 0x1234abcd\nstart=${start}, type=83, bootable\n`);
  // Something in the BPB area to be kept, and data after the gap that must stay.
  const bytes = await readFile(disk);
  bytes.fill(0x5a, 0x10, 0x40);
  bytes.fill(0xa5, start * 512, start * 512 + 4096);
  await writeFile(disk, bytes);
  return disk;
}

describe('boot sectors equal grub-bios-setup', () => {
  for (const c of setups) {
    for (const source of ['grub-mkimage', 'ours'] as const) {
      it(`${c.name}, core.img from ${source}`, async (ctx) => {
        requireGrub2(ctx);
        const files = await hostFiles();
        const core = source === 'ours' ? (await grub2Core(files)).core : await mkimage('(,msdos1)/boot/grub', ['ext2', 'part_msdos', 'biosdisk']);
        const disk = await freshDisk(c.start);
        const before = await readFile(disk);
        const { mbr, embedded } = grub2BootSectors(before.subarray(0, 512), files.boot, core, { reedSolomon: c.rs });
        const after = await biosSetup(disk, core, c.rs ? [] : ['--no-rs-codes']);
        const ours = Buffer.from(before);
        ours.set(mbr, 0);
        ours.set(embedded, 512);
        expect(ours.subarray(0, c.start * 512).equals(after.subarray(0, c.start * 512))).toBe(true);
        expect(after.subarray(c.start * 512).equals(before.subarray(c.start * 512))).toBe(true);
        const sectors = Math.ceil(core.length / 512);
        expect(embedded.length / 512).toBe(Math.min(c.start - 1, c.rs ? 2 * sectors : sectors));
      });
    }
  }

  it('refuses a gap too small for core.img, naming the start and the fix', async (ctx) => {
    requireGrub2(ctx);
    const files = await hostFiles();
    const disk = await freshDisk(40);
    const mbr = (await readFile(disk)).subarray(0, 512);
    const { core } = await grub2Core(files);
    let err: unknown;
    try {
      grub2BootSectors(mbr, files.boot, core);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).code).toBe('E_OUT_OF_RANGE');
    expect((err as ImageError).message).toMatch(/sector 40.*sectors 1\.\.5\d/);
  });
});

describe('grub.cfg', () => {
  it('one entry for the chosen kernel, serial and screen', () => {
    const cfg = grub2Config({ title: "Debian's 12", kernel: '/boot/vmlinuz-6.1', initrd: '/boot/initrd.img-6.1', rootArg: 'UUID=abc', consoles: ['tty0', 'ttyS0,115200n8'], serial: true, timeout: 1 });
    expect(cfg).toContain("menuentry 'Debian'\\''s 12' {");
    expect(cfg).toContain('  linux /boot/vmlinuz-6.1 root=UUID=abc ro console=tty0 console=ttyS0,115200n8\n');
    expect(cfg).toContain('  initrd /boot/initrd.img-6.1\n');
    expect(cfg).toContain('terminal_output serial console');
    expect(cfg).toContain('set timeout=1');
  });
});

function expectTypedOrOk(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof ImageError)) throw e;
  }
}

describe('fuzz: parsers give a result or a typed error', () => {
  it('moddep.lst', async () => {
    const base = existsSync(`${I386}/moddep.lst`) ? await readFile(`${I386}/moddep.lst`, 'utf8') : 'ext2: fshelp\nfshelp:\npart_msdos:\nbiosdisk:\n';
    const r = prng(20);
    for (let i = 0; i < 300; i++) {
      const chars = [...base.slice(0, 2000)];
      for (let j = r.int(1, 20); j > 0; j--) chars[r.int(0, chars.length - 1)] = String.fromCharCode(r.int(0, 127));
      expectTypedOrOk(() => resolveModules(['ext2', 'part_msdos', 'biosdisk'], parseModdep(chars.join(''))));
    }
    expectTypedOrOk(() => resolveModules(['a'], parseModdep('a: b\nb: a\n')));
    expect(resolveModules(['a'], parseModdep('a: b\nb: a\n'))).toEqual(['b', 'a']);
  });

  it('module and kernel ELF headers', async (ctx) => {
    requireGrub2(ctx);
    const r = prng(21);
    const kernel = await readFile(`${I386}/kernel.img`);
    const mod = await readFile(`${I386}/ext2.mod`);
    for (let i = 0; i < 400; i++) {
      const k = Buffer.from(kernel.subarray(0, i % 2 ? kernel.length : r.int(0, 200)));
      const m = Buffer.from(mod);
      for (let j = r.int(1, 8); j > 0; j--) {
        k[r.int(0, 63) % Math.max(k.length, 1)] = r.int(0, 255);
        const shoff = m.readUInt32LE(32);
        m[r.next() < 0.5 ? r.int(0, 51) : Math.min(m.length - 1, shoff + r.int(0, 400))] = r.int(0, 255);
      }
      expectTypedOrOk(() => kernelRawImage(k));
      expectTypedOrOk(() => checkModule(m, 'ext2'));
    }
  });

  it('MBRs and core.img headers given to the setup', async (ctx) => {
    requireGrub2(ctx);
    const files = await hostFiles();
    const { core } = await grub2Core(files);
    const r = prng(22);
    for (let i = 0; i < 200; i++) {
      const mbr = r.bytes(512);
      mbr[0x1fe] = 0x55;
      mbr[0x1ff] = 0xaa;
      const c = Buffer.from(core.subarray(0, r.next() < 0.2 ? r.int(0, 1200) : core.length));
      if (c.length > 0x220) c.writeUInt16LE(r.int(0, 0xffff), 512 + DECOMPRESSOR.NO_REED_SOLOMON_LENGTH);
      expectTypedOrOk(() => grub2BootSectors(mbr, files.boot, c));
    }
  });
});
