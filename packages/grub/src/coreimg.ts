import { ImageError, view } from '@amitrans/block';
import { checkModule, kernelRawImage } from './elf32.js';
import { lzmaRawCompress } from './lzma.js';

export const SECTOR = 512;

/** diskboot.img (core.img sector 0) blocklist fields (include/grub/offsets.h). */
export const DISKBOOT = {
  /** The first 12-byte entry {u64 start, u16 len, u16 segment}; further entries go downward. */
  FIRST_BLOCK: 0x1f4,
  BLOCK_LEN: 0x1fc,
  BLOCK_SEGMENT: 0x1fe,
  ENTRY: 12,
} as const;

/** lzma_decompress.img (startup_raw.S) fields, as offsets inside that image. */
export const DECOMPRESSOR = {
  COMPRESSED_SIZE: 0x08,
  UNCOMPRESSED_SIZE: 0x0c,
  REED_SOLOMON_REDUNDANCY: 0x10,
  NO_REED_SOLOMON_LENGTH: 0x14,
  BOOT_DEVICE: 0x18,
  /** It runs at 0x8200 and must end before 0x9000. */
  MAX_SIZE: 0x9000 - 0x8200,
} as const;

/** core.img is loaded at 0x9000 and must end before 0x78000. */
export const MAX_CORE_SIZE = 0x78000 - 0x9000;
const MODULE_INFO_MAGIC = 0x676d696d; // "mimg"
/** Object types in the module area (include/grub/kernel.h). */
export const OBJ_TYPE = { ELF: 0, MEMDISK: 1, CONFIG: 2, PREFIX: 3 } as const;

/** The GRUB 2 (2.00 or later) i386-pc image files core.img is made of. */
export interface Grub2Images {
  diskboot: Uint8Array;
  lzmaDecompress: Uint8Array;
  kernel: Uint8Array;
}

export interface CoreImageOptions {
  /** ELF modules in load order (see resolveModules). */
  modules: readonly { name: string; bytes: Uint8Array }[];
  /** $prefix, e.g. '(,msdos1)/boot/grub'. */
  prefix: string;
  /** An embedded config run before normal.mod loads. */
  config?: string;
  /** Raw LZMA1 encoder; default LZMA-JS. */
  compress?: (data: Uint8Array) => Uint8Array;
}

export interface CoreImage {
  core: Uint8Array;
  /** The uncompressed payload: kernel raw image + module area. */
  payload: Uint8Array;
}

const align4 = (n: number): number => (n + 3) & ~3;

function object(type: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + align4(data.length));
  view(out).setUint32(0, type, true);
  view(out).setUint32(4, out.length, true);
  out.set(data, 8);
  return out;
}

const cstring = (s: string): Uint8Array => new TextEncoder().encode(`${s}\0`);

/** struct grub_module_info32 + the objects: modules, then config, then prefix (grub-mkimage's order). */
export function moduleArea(options: Pick<CoreImageOptions, 'modules' | 'prefix' | 'config'>): Uint8Array {
  const objects = options.modules.map((m) => {
    checkModule(m.bytes, m.name);
    return object(OBJ_TYPE.ELF, m.bytes);
  });
  if (options.config !== undefined) objects.push(object(OBJ_TYPE.CONFIG, cstring(options.config)));
  objects.push(object(OBJ_TYPE.PREFIX, cstring(options.prefix)));
  const size = 12 + objects.reduce((n, o) => n + o.length, 0);
  const area = new Uint8Array(size);
  const dv = view(area);
  dv.setUint32(0, MODULE_INFO_MAGIC, true);
  dv.setUint32(4, 12, true);
  dv.setUint32(8, size, true);
  let at = 12;
  for (const o of objects) {
    area.set(o, at);
    at += o.length;
  }
  return area;
}

/** Check the image files are GRUB 2.00+ i386-pc ones (1.99 has no lzma_decompress.img and another layout). */
export function checkGrub2Images(images: Grub2Images): number {
  if (images.diskboot.length !== SECTOR) throw new ImageError('E_CORRUPT', `diskboot.img is ${images.diskboot.length} bytes, not 512`, { structure: 'diskboot.img' });
  const d = images.lzmaDecompress;
  if (d.length < 0x20 || d.length > DECOMPRESSOR.MAX_SIZE) throw new ImageError('E_CORRUPT', `lzma_decompress.img is ${d.length} bytes; it must be between 32 and ${DECOMPRESSOR.MAX_SIZE}`, { structure: 'lzma_decompress.img' });
  if (d[0] !== 0xea) throw new ImageError('E_UNSUPPORTED', 'lzma_decompress.img does not start with a far jump (0xEA): not a GRUB 2.00+ i386-pc decompressor', { structure: 'lzma_decompress.img', offset: 0 });
  const noRs = view(d).getUint16(DECOMPRESSOR.NO_REED_SOLOMON_LENGTH, true);
  if (noRs < 0x20 || noRs > d.length) throw new ImageError('E_CORRUPT', `lzma_decompress.img's no-Reed-Solomon length ${noRs} is outside the image (${d.length} bytes)`, { structure: 'lzma_decompress.img', offset: DECOMPRESSOR.NO_REED_SOLOMON_LENGTH });
  return noRs;
}

/**
 * What `grub-mkimage -O i386-pc -p PREFIX [-c CONFIG] MODULES...` writes: diskboot.img with
 * its sector count, lzma_decompress.img with the payload sizes, then the raw LZMA payload.
 */
export function buildCoreImage(images: Grub2Images, options: CoreImageOptions): CoreImage {
  checkGrub2Images(images);
  const kernel = kernelRawImage(images.kernel);
  const area = moduleArea(options);
  const payload = new Uint8Array(kernel.length + area.length);
  payload.set(kernel);
  payload.set(area, kernel.length);
  const packed = (options.compress ?? lzmaRawCompress)(payload);
  const size = SECTOR + images.lzmaDecompress.length + packed.length;
  if (size > MAX_CORE_SIZE) throw new ImageError('E_TOO_LARGE', `core.img would be ${size} bytes; GRUB loads at most ${MAX_CORE_SIZE}`, { structure: 'core.img' });
  const core = new Uint8Array(size);
  core.set(images.diskboot);
  view(core).setUint16(DISKBOOT.BLOCK_LEN, Math.ceil((size - SECTOR) / SECTOR), true);
  core.set(images.lzmaDecompress, SECTOR);
  view(core).setUint32(SECTOR + DECOMPRESSOR.COMPRESSED_SIZE, packed.length, true);
  view(core).setUint32(SECTOR + DECOMPRESSOR.UNCOMPRESSED_SIZE, payload.length, true);
  core.set(packed, SECTOR + images.lzmaDecompress.length);
  return { core, payload };
}
