/** MBR type bytes that start an EBR chain: CHS extended, LBA extended, Linux extended. */
export const EXTENDED_TYPES: ReadonlySet<number> = new Set([0x05, 0x0f, 0x85]);
export const TYPE_GPT_PROTECTIVE = 0xee;
export const TYPE_LINUX = 0x83;

export function isExtendedType(type: number): boolean {
  return EXTENDED_TYPES.has(type);
}

const NAMES: ReadonlyMap<number, string> = new Map([
  [0x00, 'Empty'],
  [0x01, 'FAT12'],
  [0x04, 'FAT16 <32M'],
  [0x05, 'Extended'],
  [0x06, 'FAT16'],
  [0x07, 'HPFS/NTFS/exFAT'],
  [0x0b, 'W95 FAT32'],
  [0x0c, 'W95 FAT32 (LBA)'],
  [0x0e, 'W95 FAT16 (LBA)'],
  [0x0f, 'W95 Extended (LBA)'],
  [0x27, 'Hidden NTFS WinRE'],
  [0x82, 'Linux swap'],
  [0x83, 'Linux'],
  [0x85, 'Linux extended'],
  [0x8e, 'Linux LVM'],
  [0xa5, 'FreeBSD'],
  [0xa6, 'OpenBSD'],
  [0xa9, 'NetBSD'],
  [0xaf, 'HFS / HFS+'],
  [0xee, 'GPT'],
  [0xef, 'EFI (FAT-12/16/32)'],
  [0xfd, 'Linux raid autodetect'],
]);

/** A human name for an MBR type byte, as fdisk prints it; "Unknown (0xNN)" otherwise. */
export function partitionTypeName(type: number): string {
  return NAMES.get(type) ?? `Unknown (0x${type.toString(16).padStart(2, '0')})`;
}
