/**
 * The guest OS as an OVF OperatingSystemSection names it: a CIM_OperatingSystem OsType
 * number (DMTF's list, which VirtualBox and VMware both map back to their own types), a
 * description, and VirtualBox's own OS type id for the vbox:OSType hint.
 */
export interface OvfOsType {
  id: number;
  description: string;
  vbox: string;
}

interface Family {
  /** CIM OsType ids: 32-bit, 64-bit. */
  ids: [number, number];
  description: string;
  vbox: [string, string];
}

const GENERIC: Family = { ids: [99, 101], description: 'Linux', vbox: ['Linux26', 'Linux26_64'] };

// os-release ids (and the families @amitrans/guest reports) to CIM OsType numbers.
const FAMILIES: Record<string, Family> = {
  debian: { ids: [95, 96], description: 'Debian', vbox: ['Debian', 'Debian_64'] },
  ubuntu: { ids: [93, 94], description: 'Ubuntu', vbox: ['Ubuntu', 'Ubuntu_64'] },
  rhel: { ids: [79, 80], description: 'Red Hat Enterprise Linux', vbox: ['RedHat', 'RedHat_64'] },
  redhat: { ids: [79, 80], description: 'Red Hat Enterprise Linux', vbox: ['RedHat', 'RedHat_64'] },
  centos: { ids: [106, 107], description: 'CentOS', vbox: ['RedHat', 'RedHat_64'] },
  ol: { ids: [108, 109], description: 'Oracle Linux', vbox: ['Oracle', 'Oracle_64'] },
  oracle: { ids: [108, 109], description: 'Oracle Linux', vbox: ['Oracle', 'Oracle_64'] },
  sles: { ids: [84, 85], description: 'SUSE Linux Enterprise Server', vbox: ['OpenSUSE', 'OpenSUSE_64'] },
  suse: { ids: [82, 83], description: 'SUSE', vbox: ['OpenSUSE', 'OpenSUSE_64'] },
  opensuse: { ids: [82, 83], description: 'openSUSE', vbox: ['OpenSUSE', 'OpenSUSE_64'] },
  'opensuse-leap': { ids: [82, 83], description: 'openSUSE', vbox: ['OpenSUSE', 'OpenSUSE_64'] },
  mandriva: { ids: [89, 90], description: 'Mandriva', vbox: ['Mandriva', 'Mandriva_64'] },
  // CIM has no entries for these; VirtualBox's exporter also falls back to generic Linux.
  fedora: { ids: [99, 101], description: 'Fedora', vbox: ['Fedora', 'Fedora_64'] },
  amzn: { ids: [99, 101], description: 'Amazon Linux', vbox: ['Linux26', 'Linux26_64'] },
};

const BITS_32 = new Set(['i386', 'i486', 'i586', 'i686', 'x86', 'arm', 'armhf']);

/**
 * The OVF OS type for an os-release id and an architecture. An unknown distribution is
 * generic Linux; an unknown architecture counts as 64-bit, because a 64-bit virtual
 * machine also runs a 32-bit guest while the reverse does not boot.
 */
export function ovfOsType(distro = '', arch = ''): OvfOsType {
  const family = FAMILIES[distro.toLowerCase()] ?? GENERIC;
  const bits = BITS_32.has(arch.toLowerCase()) ? 0 : 1;
  return {
    id: family.ids[bits],
    description: bits ? `${family.description} 64-Bit` : family.description,
    vbox: family.vbox[bits],
  };
}
