/**
 * GRUB legacy's error numbers and their meanings, as stage 2 prints them ("Error 17: Cannot
 * mount selected partition"). Stage 1.5 prints only "Error N", so the meaning comes from
 * here. Source: the GNU GRUB legacy manual, "Error messages reported by Stage 2"
 * (stage2/common.c, err_list), GRUB 0.97.
 */
export const GRUB_LEGACY_ERRORS: Readonly<Record<number, string>> = {
  1: 'Filename must be either an absolute filename or blocklist',
  2: 'Bad file or directory type',
  3: 'Bad or corrupt data while decompressing file',
  4: 'Bad or incompatible header in compressed file',
  5: 'Partition table invalid or corrupt',
  6: 'Mismatched or corrupt version of stage1/stage2',
  7: 'Loading below 1MB is not supported',
  8: 'Kernel must be loaded before booting',
  9: 'Unknown boot failure',
  10: 'Unsupported Multiboot features requested',
  11: 'Unrecognized device string',
  12: 'Invalid device requested',
  13: 'Invalid or unsupported executable format',
  14: 'Filesystem compatibility error, cannot read whole file',
  15: 'File not found',
  16: 'Inconsistent filesystem structure',
  17: 'Cannot mount selected partition',
  18: 'Selected cylinder exceeds maximum supported by BIOS',
  19: 'Linux kernel must be loaded before initrd',
  20: 'Multiboot kernel must be loaded before modules',
  21: 'Selected disk does not exist',
  22: 'No such partition',
  23: 'Error while parsing number',
  24: 'Attempt to access block outside partition',
  25: 'Disk read error',
  26: 'Too many symbolic links',
  27: 'Unrecognized command',
  28: 'Selected item cannot fit into memory',
  29: 'Disk write error',
  30: 'Invalid argument',
  31: 'File is not sector aligned',
  32: 'Must be authenticated',
  33: 'Serial device not configured',
  34: 'No spare sectors on the disk',
};
