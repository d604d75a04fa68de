import { ImageError } from '@amitrans/block';
import type { LineChange, TextEdit } from './fstab.js';

/** ifcfg-*: no HWADDR, so the NIC the target gives (with a new MAC) still comes up as eth0. */
export function transformIfcfg(text: string): TextEdit {
  const out: string[] = [];
  const changes: LineChange[] = [];
  text.split('\n').forEach((raw, i) => {
    if (/^\s*HWADDR\s*=/.test(raw)) changes.push({ line: i, before: raw, after: '', why: 'the target NIC has another MAC address' });
    else out.push(raw);
  });
  return { text: out.join('\n'), changes };
}

/** rc.local: comment out the lines that wait on the EC2 metadata service the target lacks. */
export function commentMetadataFetches(text: string): TextEdit {
  const lines = text.split('\n');
  const changes: LineChange[] = [];
  lines.forEach((raw, i) => {
    if (/169\.254\.169\.254/.test(raw) && !/^\s*#/.test(raw)) {
      const after = `# amitrans: no metadata service on this target: ${raw}`;
      changes.push({ line: i, before: raw, after, why: 'no EC2 metadata service on the target (boot would hang or fail here)' });
      lines[i] = after;
    }
  });
  return { text: lines.join('\n'), changes };
}

/** sshd_config: set PermitRootLogin and PasswordAuthentication, replacing active or commented lines. */
export function transformSshdConfig(text: string, settings: Record<string, string>): TextEdit {
  const lines = text.split('\n');
  const changes: LineChange[] = [];
  for (const [key, value] of Object.entries(settings)) {
    const want = `${key} ${value}`;
    const active = lines.findIndex((l) => new RegExp(`^\\s*${key}\\s`, 'i').test(l));
    if (active >= 0) {
      if (lines[active]!.trim() !== want) {
        changes.push({ line: active, before: lines[active]!, after: want, why: `CloudStack templates log in with a password (${key})` });
        lines[active] = want;
      }
      continue;
    }
    const commented = lines.findIndex((l) => new RegExp(`^\\s*#\\s*${key}\\s`, 'i').test(l));
    const at = commented >= 0 ? commented + 1 : lines[lines.length - 1] === '' ? lines.length - 1 : lines.length;
    lines.splice(at, 0, want);
    changes.push({ line: at, before: '', after: want, why: `CloudStack templates log in with a password (${key})` });
  }
  return { text: lines.join('\n'), changes };
}

/** /etc/shadow: the root entry's password field becomes `hash`; the other fields are kept. */
export function transformShadow(text: string, hash: string): TextEdit {
  const lines = text.split('\n');
  const changes: LineChange[] = [];
  const i = lines.findIndex((l) => l.startsWith('root:'));
  if (i < 0) throw new ImageError('E_UNSUPPORTED', 'the guest\'s /etc/shadow has no root entry: cannot set the root password', { structure: 'guest /etc/shadow' });
  const f = lines[i]!.split(':');
  f[1] = hash;
  // Days since the epoch of the change: keep what was there when unset, so ageing rules stay.
  const after = f.join(':');
  changes.push({ line: i, before: `root:${lines[i]!.split(':')[1] ? '<old hash>' : ''}:...`, after: `root:${hash.startsWith('$') ? '<sha512-crypt>' : hash}:...`, why: 'root password for the CloudStack template' });
  lines[i] = after;
  return { text: lines.join('\n'), changes };
}
