import { exists, list, readTextOrWarn, type GuestFs } from './fs.js';
import { parseKeyValues } from './distro.js';

export interface IfcfgFile {
  file: string;
  device: string;
  bootproto: string;
  hwaddr?: string;
}

export interface NetworkConfig {
  ifcfg: IfcfgFile[];
  /** iface stanzas of /etc/network/interfaces: "eth0 inet dhcp". */
  interfaces: string[];
  /** udev rules that pin interface names to MAC addresses. */
  persistentNetRules: string[];
  /** Kernel interface names (eth0, eth1) the configuration brings up: interfaces, ifcfg, netplan, networkd. */
  ethNames: string[];
  /**
   * The guest's udev renames interfaces (predictable names: eth0 becomes ens3) unless told
   * not to: its 80-net-setup-link.rules (systemd 209+) or 80-net-name-slot.rules (197-208)
   * is present and not masked.
   */
  renamesInterfaces: boolean;
}

/** The file that masks predictable interface names: a link to /dev/null (systemd's documented way). */
export const NAMING_MASK = '/etc/udev/rules.d/80-net-setup-link.rules';
const NAMING_RULES = ['80-net-setup-link.rules', '80-net-name-slot.rules'];

async function renamesInterfaces(fs: GuestFs): Promise<boolean> {
  for (const name of NAMING_RULES) {
    const mask = await fs.lstat(`/etc/udev/rules.d/${name}`);
    if (mask?.type === 'symlink' && (await fs.readlink(`/etc/udev/rules.d/${name}`)) === '/dev/null') continue;
    if (mask) continue; // the admin's own rule replaces the packaged one
    for (const dir of ['/lib/udev/rules.d', '/usr/lib/udev/rules.d']) {
      if (await exists(fs, `${dir}/${name}`)) return true;
    }
  }
  return false;
}

const ETH = /\beth\d+\b/g;

/** eth names in netplan YAML and systemd-networkd files (matched loosely: only the names matter). */
async function ethNamesIn(fs: GuestFs, dirs: string[], suffix: RegExp, warnings: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const dir of dirs) {
    for (const name of await list(fs, dir)) {
      if (!suffix.test(name)) continue;
      const t = await readTextOrWarn(fs, `${dir}/${name}`, warnings, 64 * 1024);
      out.push(...(t?.text.match(ETH) ?? []));
    }
  }
  return out;
}

export async function detectNetwork(fs: GuestFs, warnings: string[] = []): Promise<NetworkConfig> {
  const ifcfg: IfcfgFile[] = [];
  for (const name of await list(fs, '/etc/sysconfig/network-scripts')) {
    if (!name.startsWith('ifcfg-') || name === 'ifcfg-lo') continue;
    const file = `/etc/sysconfig/network-scripts/${name}`;
    const t = await readTextOrWarn(fs, file, warnings, 64 * 1024);
    if (!t) continue;
    const kv = parseKeyValues(t.text);
    const f: IfcfgFile = { file, device: kv.get('DEVICE') ?? name.slice(6), bootproto: kv.get('BOOTPROTO') ?? '' };
    if (kv.get('HWADDR')) f.hwaddr = kv.get('HWADDR')!;
    ifcfg.push(f);
  }
  const interfaces: string[] = [];
  const ifs = await readTextOrWarn(fs, '/etc/network/interfaces', warnings, 256 * 1024);
  for (const raw of ifs?.text.split('\n') ?? []) {
    const m = /^\s*iface\s+(.+)$/.exec(raw);
    if (m) interfaces.push(m[1]!.trim());
  }
  const persistentNetRules: string[] = [];
  for (const f of ['/etc/udev/rules.d/70-persistent-net.rules', '/etc/udev/rules.d/75-persistent-net-generator.rules']) {
    if (await exists(fs, f)) persistentNetRules.push(f);
  }
  const ethNames = [...new Set([
    ...interfaces.flatMap((i) => i.match(ETH) ?? []),
    ...ifcfg.flatMap((f) => f.device.match(ETH) ?? []),
    ...(await ethNamesIn(fs, ['/etc/netplan'], /\.ya?ml$/, warnings)),
    ...(await ethNamesIn(fs, ['/etc/systemd/network'], /\.network$/, warnings)),
  ])].sort();
  return { ifcfg, interfaces, persistentNetRules, ethNames, renamesInterfaces: await renamesInterfaces(fs) };
}
