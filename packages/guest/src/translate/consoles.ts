import type { LineChange, TextEdit } from './fstab.js';

/**
 * /etc/inittab: getty lines on the Xen consoles move to `to` (ttyS0), or the reverse for
 * XenServer (`from` = ['ttyS0'], `to` = hvc0/xvc0). A getty whose id is the device name gets
 * a short id, since sysvinit ids are at most 4 characters.
 */
export function transformInittab(text: string, from: readonly string[], to: string): TextEdit {
  const lines = text.split('\n');
  const changes: LineChange[] = [];
  lines.forEach((raw, i) => {
    if (/^\s*#/.test(raw)) return;
    const f = raw.split(':');
    if (f.length < 4) return;
    const proc = f.slice(3).join(':');
    const dev = from.find((d) => new RegExp(`\\b${d}\\b`).test(proc));
    if (!dev || !/getty|login/.test(proc)) return;
    // Ids named after a console (hvc0, co, T0, S0) follow it; other ids are kept.
    const id = f[0] === dev || f[0]!.length > 4 || /^(co|T\d+|S\d+|hvc\d*|xvc\d*)$/.test(f[0]!) || from.includes(f[0]!) ? idFor(to) : f[0]!;
    const after = [id, f[1], f[2], proc.replace(new RegExp(`\\b${dev}\\b`, 'g'), to)].join(':');
    changes.push({ line: i, before: raw, after, why: `${dev} does not exist on the target; its console is ${to}` });
    lines[i] = after;
  });
  return { text: lines.join('\n'), changes };
}

function idFor(dev: string): string {
  if (dev.startsWith('ttyS')) return `T${dev.slice(4)}`;
  if (dev === 'xvc0') return 'co';
  return dev.slice(0, 4);
}

/** /etc/securetty: root may log in on the target console; the replaced consoles go. */
export function transformSecuretty(text: string, from: readonly string[], to: string): TextEdit {
  const lines = text.split('\n');
  const changes: LineChange[] = [];
  const has = lines.some((l) => l.trim() === to);
  const out: string[] = [];
  let placed = has;
  lines.forEach((raw, i) => {
    if (from.includes(raw.trim())) {
      if (!placed) {
        out.push(to);
        changes.push({ line: i, before: raw, after: to, why: `root logs in on ${to} on the target` });
        placed = true;
      } else changes.push({ line: i, before: raw, after: '', why: `${raw.trim()} does not exist on the target` });
      return;
    }
    out.push(raw);
  });
  if (!placed) {
    const at = out[out.length - 1] === '' ? out.length - 1 : out.length;
    out.splice(at, 0, to);
    changes.push({ line: at, before: '', after: to, why: `root logs in on ${to} on the target` });
  }
  return { text: out.join('\n'), changes };
}
