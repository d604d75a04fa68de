import { ImageError, view } from '@amitrans/block';

/** ELF32 constants (elf.h) for GRUB's i386-pc kernel.img and *.mod files. */
const ELF_MAGIC = 0x464c457f;
const ELFCLASS32 = 1;
const ELFDATA2LSB = 1;
const EM_386 = 3;
export const ET_REL = 1;
export const ET_EXEC = 2;
const SHT_PROGBITS = 1;
const SHF_ALLOC = 2;
/** kernel.img is linked at GRUB_KERNEL_I386_PC_LINK_ADDR. */
export const KERNEL_LINK_ADDR = 0x9000;
/** kernel_size + bss + 0x9000 must stay below 0x68000 (grub-mkimage's limit). */
const KERNEL_LIMIT = 0x68000;

export interface Elf32Section {
  type: number;
  flags: number;
  addr: number;
  offset: number;
  size: number;
}

export interface Elf32Header {
  type: number;
  sections: Elf32Section[];
}

function bad(file: string, detail: string, offset?: number): ImageError {
  return new ImageError('E_CORRUPT', `${file}: ${detail}`, { structure: 'ELF32 header', ...(offset !== undefined ? { offset } : {}) });
}

/** Parse the ELF32 i386 header and section table of a GRUB image or module; every table is bounds-checked. */
export function parseElf32(buf: Uint8Array, file: string): Elf32Header {
  if (buf.length < 52) throw bad(file, `${buf.length} bytes is too short for an ELF32 header`);
  const dv = view(buf);
  if (dv.getUint32(0, true) !== ELF_MAGIC) throw new ImageError('E_BAD_MAGIC', `${file} is not an ELF file`, { structure: 'ELF32 header', offset: 0 });
  if (buf[4] !== ELFCLASS32 || buf[5] !== ELFDATA2LSB || dv.getUint16(18, true) !== EM_386) {
    throw new ImageError('E_UNSUPPORTED', `${file} is not a 32-bit little-endian i386 ELF file (GRUB i386-pc)`, { structure: 'ELF32 header', offset: 4 });
  }
  const type = dv.getUint16(16, true);
  const shoff = dv.getUint32(32, true);
  const shentsize = dv.getUint16(46, true);
  const shnum = dv.getUint16(48, true);
  if (shentsize < 40 || shoff + shnum * shentsize > buf.length) throw bad(file, `section table (${shnum} x ${shentsize} at ${shoff}) lies outside the file`, 32);
  const sections: Elf32Section[] = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shentsize;
    const s = { type: dv.getUint32(at + 4, true), flags: dv.getUint32(at + 8, true), addr: dv.getUint32(at + 12, true), offset: dv.getUint32(at + 16, true), size: dv.getUint32(at + 20, true) };
    if (s.type === SHT_PROGBITS && s.offset + s.size > buf.length) throw bad(file, `section ${i} (${s.size} bytes at ${s.offset}) lies outside the file`, at);
    sections.push(s);
  }
  return { type, sections };
}

/**
 * kernel.img's raw image as grub-mkimage lays it for i386-pc: every allocated PROGBITS
 * section at its link address - 0x9000, gaps zero-filled, ending at _edata (no .bss).
 */
export function kernelRawImage(kernel: Uint8Array): Uint8Array {
  const elf = parseElf32(kernel, 'kernel.img');
  if (elf.type !== ET_EXEC) throw bad('kernel.img', `ELF type ${elf.type} is not an executable`, 16);
  const alloc = elf.sections.filter((s) => s.flags & SHF_ALLOC);
  const progbits = alloc.filter((s) => s.type === SHT_PROGBITS && s.size > 0);
  if (progbits.length === 0) throw bad('kernel.img', 'no loadable sections');
  let end = 0;
  let memEnd = 0;
  for (const s of alloc) {
    if (s.addr < KERNEL_LINK_ADDR || s.addr + s.size > KERNEL_LIMIT) throw bad('kernel.img', `section at 0x${s.addr.toString(16)} (+${s.size}) is outside 0x9000-0x68000: not an i386-pc kernel`);
    memEnd = Math.max(memEnd, s.addr + s.size);
    if (s.type === SHT_PROGBITS) end = Math.max(end, s.addr + s.size - KERNEL_LINK_ADDR);
  }
  const raw = new Uint8Array(end);
  for (const s of progbits) raw.set(kernel.subarray(s.offset, s.offset + s.size), s.addr - KERNEL_LINK_ADDR);
  return raw;
}

/** A *.mod file is an ELF32 i386 relocatable object (what grub-mkimage and kern/dl.c accept). */
export function checkModule(mod: Uint8Array, name: string): void {
  const elf = parseElf32(mod, `${name}.mod`);
  if (elf.type !== ET_REL) throw bad(`${name}.mod`, `ELF type ${elf.type} is not a relocatable module`, 16);
}
