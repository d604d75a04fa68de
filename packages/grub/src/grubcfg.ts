export interface Grub2ConfigOptions {
  title: string;
  /** Kernel and initrd paths as GRUB 2 sees them from $root (the root filesystem: /boot/...). */
  kernel: string;
  initrd?: string;
  /** root= for the kernel. */
  rootArg: string;
  /** console= values in order (the last one gets /dev/console). */
  consoles: readonly string[];
  /** GRUB's own menu on the serial port as well as the screen. */
  serial: boolean;
  timeout?: number;
  extraArgs?: readonly string[];
}

/** GRUB 2 quotes words with single quotes; a single quote itself goes as '\''. */
function quote(s: string): string {
  return /^[A-Za-z0-9_./,=:+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A grub.cfg for the translated guest (the shape booted in ../shared/specs/grub2.md §5): one
 * entry for the chosen kernel, its modules loaded explicitly so it boots even where the
 * guest's GRUB directory has no command.lst.
 */
export function grub2Config(o: Grub2ConfigOptions): string {
  const lines = ['# Written by amitrans for the translated disk.'];
  if (o.serial) {
    lines.push('serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1', 'terminal_input serial console', 'terminal_output serial console');
  }
  lines.push(`set timeout=${o.timeout ?? 5}`, 'set default=0', '');
  const args = [`root=${o.rootArg}`, 'ro', ...o.consoles.map((c) => `console=${c}`), ...(o.extraArgs ?? [])];
  lines.push(`menuentry ${quote(o.title)} {`, '  insmod linux', `  linux ${quote(o.kernel)} ${args.map(quote).join(' ')}`);
  if (o.initrd) lines.push(`  initrd ${quote(o.initrd)}`);
  lines.push('}');
  return lines.join('\n') + '\n';
}
