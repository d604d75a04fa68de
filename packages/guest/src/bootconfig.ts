/**
 * GRUB configuration as pv-grub, pygrub and kexec-loader read it: GRUB legacy menu.lst /
 * grub.conf (the AMI case) and, for newer guests, GRUB 2 grub.cfg menu entries.
 */
export interface BootEntry {
  title: string;
  /** GRUB root device as written: "(hd0)", "(hd0,0)"; undefined when the entry has none. */
  root?: string;
  /** Kernel path inside the filesystem, device prefix removed. */
  kernel?: string;
  /** Kernel arguments after the path. */
  args: string[];
  initrd?: string;
  /** Value of root= on the kernel line. */
  rootArg?: string;
  /** Values of console= on the kernel line, in order. */
  consoles: string[];
  /** 0-based line of the `title`/`menuentry` in the file. */
  line: number;
}

export interface BootConfig {
  file: string;
  kind: 'grub-legacy' | 'grub2';
  /** Index of the default entry (GRUB legacy `default N`; grub2 numeric default or 0). */
  defaultIndex: number;
  timeout?: number;
  hiddenmenu: boolean;
  /** `serial ...` and `terminal ...` lines (GRUB legacy). */
  serial?: string;
  terminal?: string;
  entries: BootEntry[];
}

const DEVICE_PREFIX = /^\((?:hd|fd|nd)\d+(?:,\d+)?(?:,[a-z])?\)/;

function splitArgs(rest: string): string[] {
  return rest.trim().split(/\s+/).filter(Boolean);
}

function kernelLine(entry: BootEntry, words: string[]): void {
  const [path, ...args] = words;
  if (path === undefined) return;
  const m = DEVICE_PREFIX.exec(path);
  if (m && entry.root === undefined) entry.root = m[0];
  entry.kernel = path.replace(DEVICE_PREFIX, '') || path;
  entry.args = args;
  for (const a of args) {
    if (a.startsWith('root=')) entry.rootArg = a.slice(5);
    if (a.startsWith('console=')) entry.consoles.push(a.slice(8));
  }
}

export function parseGrubLegacy(file: string, text: string): BootConfig {
  const cfg: BootConfig = { file, kind: 'grub-legacy', defaultIndex: 0, hiddenmenu: false, entries: [] };
  let current: BootEntry | undefined;
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    // "timeout=5" and "timeout 5" are the same command (anaconda writes the first).
    const m = /^([^\s=]+)\s*=?\s*(.*)$/.exec(line);
    if (!m) return;
    const key = m[1]!.toLowerCase();
    const rest = m[2]!;
    if (key === 'title') {
      current = { title: rest.trim(), args: [], consoles: [], line: i };
      cfg.entries.push(current);
      return;
    }
    if (!current) {
      if (key === 'default') cfg.defaultIndex = /^\d+$/.test(rest.trim()) ? Number(rest.trim()) : 0;
      else if (key === 'timeout' && /^\d+$/.test(rest.trim())) cfg.timeout = Number(rest.trim());
      else if (key === 'hiddenmenu') cfg.hiddenmenu = true;
      else if (key === 'serial') cfg.serial = rest.trim();
      else if (key === 'terminal') cfg.terminal = rest.trim();
      return;
    }
    if (key === 'root' || key === 'rootnoverify') current.root = rest.trim();
    else if (key === 'kernel') kernelLine(current, splitArgs(rest));
    else if (key === 'initrd') current.initrd = (splitArgs(rest)[0] ?? '').replace(DEVICE_PREFIX, '');
  });
  return cfg;
}

export function parseGrub2(file: string, text: string): BootConfig {
  const cfg: BootConfig = { file, kind: 'grub2', defaultIndex: 0, hiddenmenu: false, entries: [] };
  let current: BootEntry | undefined;
  let depth = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const def = /^set\s+default=["']?(\d+)["']?$/.exec(line);
    if (def) cfg.defaultIndex = Number(def[1]);
    const to = /^set\s+timeout=["']?(\d+)["']?$/.exec(line);
    if (to) cfg.timeout = Number(to[1]);
    const me = /^menuentry\s+(?:'([^']*)'|"([^"]*)"|(\S+))/.exec(line);
    if (me && depth === 0) {
      current = { title: me[1] ?? me[2] ?? me[3] ?? '', args: [], consoles: [], line: i };
      cfg.entries.push(current);
    }
    if (current) {
      const words = splitArgs(line);
      if ((words[0] === 'linux' || words[0] === 'linux16' || words[0] === 'linuxefi') && words.length > 1) kernelLine(current, words.slice(1));
      if ((words[0] === 'initrd' || words[0] === 'initrd16' || words[0] === 'initrdefi') && words[1]) current.initrd = words[1];
    }
    for (const ch of line) {
      if (ch === '{') depth++;
      if (ch === '}') depth = Math.max(0, depth - 1);
    }
    if (depth === 0) current = undefined;
  });
  return cfg;
}

/** The entry GRUB boots by default (falls back to the first). */
export function defaultEntry(cfg: BootConfig): BootEntry | undefined {
  return cfg.entries[cfg.defaultIndex] ?? cfg.entries[0];
}
