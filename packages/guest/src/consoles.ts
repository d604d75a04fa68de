import { list, readTextOrWarn, type GuestFs } from './fs.js';

export type ConsoleSource = 'inittab' | 'securetty' | 'systemd' | 'upstart';

export interface ConsoleEntry {
  device: string;
  source: ConsoleSource;
  /** The file that declares it. */
  file: string;
  line?: number;
}

const TTY = /\b(hvc\d+|xvc\d+|ttyS\d+|tty\d+|console)\b/;

/** Login consoles the guest starts (inittab, systemd getty units, upstart jobs) and allows root on (securetty). */
export async function detectConsoles(fs: GuestFs, warnings: string[] = []): Promise<ConsoleEntry[]> {
  const out: ConsoleEntry[] = [];
  const inittab = await readTextOrWarn(fs, '/etc/inittab', warnings);
  inittab?.text.split('\n').forEach((raw, line) => {
    const t = raw.trim();
    if (!t || t.startsWith('#')) return;
    const f = t.split(':');
    if (f.length < 4 || f[2] !== 'respawn') return;
    const m = TTY.exec(f.slice(3).join(':'));
    if (m && /getty|agetty|mingetty|login/.test(f[3]!)) out.push({ device: m[1]!, source: 'inittab', file: '/etc/inittab', line });
  });
  const securetty = await readTextOrWarn(fs, '/etc/securetty', warnings);
  securetty?.text.split('\n').forEach((raw, line) => {
    const t = raw.trim();
    if (t && !t.startsWith('#')) out.push({ device: t, source: 'securetty', file: '/etc/securetty', line });
  });
  for (const dir of ['/etc/systemd/system/getty.target.wants', '/etc/systemd/system/multi-user.target.wants']) {
    for (const name of await list(fs, dir)) {
      const m = /^(?:serial-)?getty@(.+)\.service$/.exec(name);
      if (m) out.push({ device: m[1]!, source: 'systemd', file: `${dir}/${name}` });
    }
  }
  for (const name of await list(fs, '/etc/init')) {
    const m = /^(hvc\d+|xvc\d+|ttyS\d+|tty\d+)\.conf$/.exec(name);
    if (m) out.push({ device: m[1]!, source: 'upstart', file: `/etc/init/${name}` });
  }
  return out;
}
