import { ImageError } from '@amitrans/block';
import { buildCoreImage, checkGrub2Images, type CoreImage, type Grub2Images } from './coreimg.js';
import { parseModdep, resolveModules } from './moddep.js';

/** What grub-install embeds for one ext2/3/4 partition on an MBR disk read through the BIOS. */
export const CORE_MODULES = ['ext2', 'part_msdos', 'biosdisk'] as const;
/** The image files a GRUB 2 i386-pc directory must hold for an install (lzma_decompress.img: 2.00 or later). */
export const GRUB2_IMAGE_FILES = ['boot.img', 'diskboot.img', 'lzma_decompress.img', 'kernel.img', 'moddep.lst'] as const;

/** A GRUB 2 i386-pc directory (/usr/lib/grub/i386-pc): its images and a reader for its modules. */
export interface Grub2Files extends Grub2Images {
  boot: Uint8Array;
  moddep: string;
  /** A *.mod file by module name; undefined when absent. */
  readModule(name: string): Promise<Uint8Array | undefined>;
}

export interface Grub2CoreOptions {
  /** $prefix; default '(,msdos1)/boot/grub'. */
  prefix?: string;
  /** Modules to embed (their moddep.lst closure is added); default ext2 part_msdos biosdisk. */
  modules?: readonly string[];
  config?: string;
  compress?: (data: Uint8Array) => Uint8Array;
}

/** The GRUB version a kernel.img carries is not stored; 2.00+ is recognised by lzma_decompress.img. */
export async function grub2Core(files: Grub2Files, options: Grub2CoreOptions = {}): Promise<CoreImage & { modules: string[] }> {
  checkGrub2Images(files);
  const order = resolveModules(options.modules ?? CORE_MODULES, parseModdep(files.moddep));
  const modules = [];
  for (const name of order) {
    const bytes = await files.readModule(name);
    if (!bytes) throw new ImageError('E_UNSUPPORTED', `GRUB module ${name}.mod is missing from the GRUB 2 directory`, { structure: 'i386-pc' });
    modules.push({ name, bytes });
  }
  const built = buildCoreImage(files, {
    modules,
    prefix: options.prefix ?? '(,msdos1)/boot/grub',
    ...(options.config !== undefined ? { config: options.config } : {}),
    ...(options.compress ? { compress: options.compress } : {}),
  });
  return { ...built, modules: order };
}

/** Files in an i386-pc directory are small; this bounds what is read for one. */
export const MAX_GRUB2_FILE = 1 << 20;

/**
 * Read a GRUB 2 i386-pc directory through `read` (a host directory or the guest's
 * filesystem): the images and moddep.lst, with modules read on demand. `where` names the
 * directory in errors.
 */
export async function loadGrub2Files(read: (name: string) => Promise<Uint8Array | undefined>, where: string): Promise<Grub2Files> {
  const got = new Map<string, Uint8Array>();
  const missing: string[] = [];
  for (const name of GRUB2_IMAGE_FILES) {
    const bytes = await read(name);
    if (bytes) got.set(name, bytes);
    else missing.push(name);
  }
  if (missing.length) {
    const old = missing.includes('lzma_decompress.img') && got.has('kernel.img') ? ' (no lzma_decompress.img: GRUB 1.99 or older, whose layout is not supported)' : '';
    throw new ImageError('E_UNSUPPORTED', `${where} is not a GRUB 2 i386-pc directory: ${missing.join(', ')} missing${old}`, { structure: 'i386-pc' });
  }
  const files: Grub2Files = {
    boot: got.get('boot.img')!,
    diskboot: got.get('diskboot.img')!,
    lzmaDecompress: got.get('lzma_decompress.img')!,
    kernel: got.get('kernel.img')!,
    moddep: new TextDecoder().decode(got.get('moddep.lst')!),
    readModule: (name) => read(`${name}.mod`),
  };
  checkGrub2Images(files);
  return files;
}
