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
  return { ifcfg, interfaces, persistentNetRules };
}
