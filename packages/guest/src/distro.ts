import { readTextOrWarn, type GuestFs } from './fs.js';

export type Family = 'redhat' | 'debian' | 'suse' | 'amazon' | 'unknown';

export interface Distro {
  /** os-release style id: amzn, centos, rhel, fedora, debian, ubuntu, ... or 'unknown'. */
  id: string;
  name: string;
  version: string;
  family: Family;
  /** Which file said so. */
  source: string;
}

/** Parse a shell-style KEY=value file (os-release, image-id, sysconfig). */
export function parseKeyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!.trim();
    if ((v.startsWith('"') && v.endsWith('"') && v.length >= 2) || (v.startsWith("'") && v.endsWith("'") && v.length >= 2)) v = v.slice(1, -1);
    out.set(m[1]!, v.replace(/\\(["'$`\\])/g, '$1'));
  }
  return out;
}

const FAMILY_BY_ID: Record<string, Family> = {
  amzn: 'amazon',
  rhel: 'redhat', centos: 'redhat', fedora: 'redhat', rocky: 'redhat', almalinux: 'redhat', ol: 'redhat', scientific: 'redhat',
  debian: 'debian', ubuntu: 'debian', linuxmint: 'debian', kali: 'debian', raspbian: 'debian',
  sles: 'suse', opensuse: 'suse', 'opensuse-leap': 'suse', sled: 'suse',
};

export function familyOf(id: string, like = ''): Family {
  const direct = FAMILY_BY_ID[id];
  if (direct) return direct;
  for (const l of like.split(/\s+/)) if (FAMILY_BY_ID[l]) return FAMILY_BY_ID[l]!;
  return 'unknown';
}

/** "CentOS release 5.11 (Final)" -> { name, version } */
function parseReleaseLine(line: string): { name: string; version: string } {
  const m = /^(.*?)\s+(?:release\s+)?v?(\d+(?:\.\d+)*)/i.exec(line.trim());
  return m ? { name: m[1]!.replace(/\s+release$/i, '').trim(), version: m[2]! } : { name: line.trim(), version: '' };
}

const RELEASE_IDS: [RegExp, string][] = [
  [/amazon linux/i, 'amzn'],
  [/centos/i, 'centos'],
  [/red hat enterprise linux/i, 'rhel'],
  [/fedora/i, 'fedora'],
  [/scientific linux/i, 'scientific'],
  [/oracle linux/i, 'ol'],
  [/rocky/i, 'rocky'],
];

/** Distribution, version and family, from the files distributions really ship. */
export async function detectDistro(fs: GuestFs, warnings: string[] = []): Promise<Distro> {
  const osr = await readTextOrWarn(fs, '/etc/os-release', warnings, 64 * 1024) ?? await readTextOrWarn(fs, '/usr/lib/os-release', warnings, 64 * 1024);
  if (osr) {
    const kv = parseKeyValues(osr.text);
    const id = (kv.get('ID') ?? '').toLowerCase();
    if (id) {
      return {
        id,
        name: kv.get('NAME') ?? id,
        version: kv.get('VERSION_ID') ?? '',
        family: familyOf(id, kv.get('ID_LIKE') ?? ''),
        source: osr.path,
      };
    }
  }
  for (const file of ['/etc/system-release', '/etc/redhat-release', '/etc/centos-release']) {
    const t = await readTextOrWarn(fs, file, warnings, 4096);
    if (!t || !t.text.trim()) continue;
    const first = t.text.trim().split('\n')[0]!;
    const id = RELEASE_IDS.find(([re]) => re.test(first))?.[1] ?? 'redhat-based';
    const { name, version } = parseReleaseLine(first);
    return { id, name, version, family: id === 'amzn' ? 'amazon' : 'redhat', source: file };
  }
  const lsb = await readTextOrWarn(fs, '/etc/lsb-release', warnings, 4096);
  if (lsb) {
    const kv = parseKeyValues(lsb.text);
    const id = (kv.get('DISTRIB_ID') ?? '').toLowerCase();
    if (id) return { id, name: kv.get('DISTRIB_ID')!, version: kv.get('DISTRIB_RELEASE') ?? '', family: familyOf(id), source: '/etc/lsb-release' };
  }
  const deb = await readTextOrWarn(fs, '/etc/debian_version', warnings, 4096);
  if (deb) return { id: 'debian', name: 'Debian GNU/Linux', version: deb.text.trim(), family: 'debian', source: '/etc/debian_version' };
  return { id: 'unknown', name: 'unknown', version: '', family: 'unknown', source: '' };
}
