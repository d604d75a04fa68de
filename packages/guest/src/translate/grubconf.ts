import type { LineChange, TextEdit } from './fstab.js';

export interface GrubConfOptions {
  /** Path of the kernel to boot by default, as GRUB sees it (/boot/vmlinuz-V). */
  kernel: string;
  initrd?: string;
  /** Title for a new entry, when no entry boots `kernel`. */
  title: string;
  /** GRUB root device for every entry ("(hd0,0)"); undefined keeps what each entry says. */
  grubRoot?: string;
  /** root= for the kernel command line. */
  rootArg: string;
  /** console= values, in order (the last one gets /dev/console). */
  consoles: string[];
  /** Put GRUB's own menu on the serial port too. */
  serial: boolean;
  /** Extra kernel arguments to make sure of (e.g. enforcing=0). */
  extraArgs?: string[];
}

interface Entry {
  lines: string[];
}

const KEY = /^\s*(\S+)/;

function keyOf(line: string): string {
  return (KEY.exec(line.replace(/#.*$/, ''))?.[1] ?? '').toLowerCase().replace(/=.*$/, '');
}

function kernelPath(line: string): string | undefined {
  const m = /^\s*kernel\s*=?\s*(\S+)/.exec(line);
  return m ? m[1]!.replace(/^\((?:hd|fd)\d+(?:,\d+)?\)/, '') : undefined;
}

function rewriteKernelLine(line: string, o: GrubConfOptions): string {
  const m = /^(\s*kernel\s*=?\s*)(\S+)(.*)$/.exec(line);
  if (!m) return line;
  const args = m[3]!.trim().split(/\s+/).filter((a) => a && !a.startsWith('root=') && !a.startsWith('console='));
  const extra = (o.extraArgs ?? []).filter((e) => !args.includes(e));
  const out = [...args, `root=${o.rootArg}`, ...o.consoles.map((c) => `console=${c}`), ...extra];
  return `${m[1]}${m[2]} ${out.join(' ')}`;
}

/**
 * Rewrite a GRUB legacy menu.lst/grub.conf for the target: the chosen kernel becomes the
 * first and default entry (created when no entry boots it), every entry gets the target's
 * GRUB root, root= and console= arguments, and a serial stanza is added when the console is
 * serial. Comments, timeout, hiddenmenu and other entries are kept.
 */
export function transformGrubLegacy(text: string, o: GrubConfOptions): TextEdit {
  const src = text.split('\n');
  if (src[src.length - 1] === '') src.pop();
  const header: string[] = [];
  const entries: Entry[] = [];
  for (const line of src) {
    if (keyOf(line) === 'title') entries.push({ lines: [line] });
    else if (entries.length > 0) entries[entries.length - 1]!.lines.push(line);
    else header.push(line);
  }
  const newHeader = header.filter((l) => !['default', 'serial', 'terminal', 'fallback'].includes(keyOf(l)));
  const firstSetting = newHeader.findIndex((l) => keyOf(l) !== '' && !/^\s*#/.test(l));
  const insertAt = firstSetting < 0 ? newHeader.length : firstSetting;
  const settings = ['default 0'];
  if (o.serial) settings.push('serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1', 'terminal --timeout=2 serial console');
  if (!newHeader.some((l) => keyOf(l) === 'timeout')) settings.push('timeout 5');
  newHeader.splice(insertAt, 0, ...settings);

  const rewritten = entries.map((e) => ({
    kernel: e.lines.map(kernelPath).find((k) => k !== undefined),
    lines: e.lines.map((l) => {
      const k = keyOf(l);
      if (k === 'kernel') return rewriteKernelLine(l, o);
      if ((k === 'root' || k === 'rootnoverify') && o.grubRoot) return l.replace(/\((?:hd|fd)\d+(?:,\d+)?\)/, o.grubRoot);
      return l;
    }),
  }));
  let chosen = rewritten.findIndex((e) => e.kernel === o.kernel || e.kernel === o.kernel.replace(/^\/boot/, ''));
  if (chosen < 0) {
    const lines = [`title ${o.title}`];
    if (o.grubRoot) lines.push(`\troot ${o.grubRoot}`);
    lines.push(rewriteKernelLine(`\tkernel ${o.kernel}`, o));
    if (o.initrd) lines.push(`\tinitrd ${o.initrd}`);
    rewritten.unshift({ kernel: o.kernel, lines });
    chosen = 0;
  } else if (o.initrd) {
    const e = rewritten[chosen]!;
    if (!e.lines.some((l) => keyOf(l) === 'initrd')) {
      const k = e.lines.findIndex((l) => keyOf(l) === 'kernel');
      e.lines.splice(k + 1, 0, `\tinitrd ${o.initrd}`);
    }
  }
  const ordered = [rewritten[chosen]!, ...rewritten.filter((_, i) => i !== chosen)];
  const out = [...newHeader, ...ordered.flatMap((e) => e.lines)].join('\n') + '\n';
  return { text: out, changes: diffLines(text, out) };
}

/** A small line diff for the change report: the lines removed and added, in order. */
export function diffLines(before: string, after: string): LineChange[] {
  const a = before.split('\n');
  const b = after.split('\n');
  // Longest common subsequence: files here are small (a few hundred lines at most).
  const n = a.length;
  const m = b.length;
  if (n * m > 4_000_000) return [{ line: 0, before: `${n} lines`, after: `${m} lines`, why: 'rewritten' }];
  const dp: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) dp[i]![j] = a[i] === b[j] ? dp[i + 1]![j + 1]! + 1 : Math.max(dp[i + 1]![j]!, dp[i]![j + 1]!);
  const out: LineChange[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      i++;
      j++;
    } else if (j < m && (i >= n || dp[i]![j + 1]! >= dp[i + 1]![j]!)) {
      out.push({ line: j, before: '', after: b[j]!, why: '' });
      j++;
    } else {
      out.push({ line: i, before: a[i]!, after: '', why: '' });
      i++;
    }
  }
  return out;
}
