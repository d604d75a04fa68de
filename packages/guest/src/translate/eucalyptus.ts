import { createHash } from 'node:crypto';
import type { GuestReport } from '../inspect.js';

/** udev: xvd* and vd* disks also get sd* names, so /dev/sda1 in fstab works on Xen and KVM. */
export const EUCA_UDEV_RULE = 'KERNEL=="xvd*", PROGRAM="/sbin/euca-udev %k", SYMLINK+="%c"\nKERNEL=="vd*", PROGRAM="/sbin/euca-udev %k", SYMLINK+="%c"\n';

export const EUCA_UDEV_SCRIPT = `#!/bin/sh
# Installed by amitrans: print the sd* name for an xvd* or vd* kernel name (for udev).
if [ "$#" -ne 1 ]; then
  echo "$0 <device>" >&2
  exit 1
fi
echo "$1" | sed -e 's/^xvd/sd/' -e 's/^vd/sd/'
`;

/**
 * The metadata rc.local of Eucalyptus starter images, as their documentation describes it:
 * swap on the third disk partition, ephemeral storage on the second, the ssh key and the
 * hostname from the metadata service, and user-data run when it is a script.
 */
export const EUCA_RC_LOCAL = `#!/bin/sh
# Installed by amitrans for Eucalyptus: talk to the instance metadata service.
MD=http://169.254.169.254/latest

# swap on the third partition, when none is active
if ! grep -q '^/' /proc/swaps 2>/dev/null; then
  for d in /dev/[xvsh]*d[a-z]3; do [ -b "$d" ] && swapon "$d" 2>/dev/null; done
fi

# ephemeral storage on the second partition
if ! grep -q '^/dev/[xvsh]*d[a-z]2 ' /proc/mounts; then
  for d in /dev/[xvsh]*d[a-z]2; do
    [ -b "$d" ] || continue
    mkdir -p /media/ephemeral0
    [ -z "$(ls -A /media/ephemeral0 2>/dev/null)" ] && mount "$d" /media/ephemeral0
    break
  done
fi

# PCI hotplug for volumes attached later
depmod -a 2>/dev/null
modprobe acpiphp 2>/dev/null

fetch() {
  if command -v curl >/dev/null 2>&1; then curl -s -f --retry 3 --retry-delay 10 -m 45 "$1"
  else wget -q -T 45 -t 3 -O - "$1"; fi
}

# the instance's ssh key, when root has none
if [ ! -s /root/.ssh/authorized_keys ]; then
  mkdir -p -m 0700 /root/.ssh
  fetch "$MD/meta-data/public-keys/0/openssh-key" | grep '^ssh-' > /root/.ssh/authorized_keys.new &&
    [ -s /root/.ssh/authorized_keys.new ] && mv /root/.ssh/authorized_keys.new /root/.ssh/authorized_keys
  rm -f /root/.ssh/authorized_keys.new
  chmod 0600 /root/.ssh/authorized_keys 2>/dev/null
  command -v restorecon >/dev/null 2>&1 && restorecon -R /root/.ssh
fi

# hostname
name=$(fetch "$MD/meta-data/local-hostname")
ip=$(fetch "$MD/meta-data/local-ipv4")
if [ -n "$name" ]; then
  [ "$name" = "$ip" ] && name="ip-$(echo "$ip" | tr . -)"
  hostname "$name"
  [ -n "$ip" ] && ! grep -q " $name\\$" /etc/hosts && echo "$ip $name" >> /etc/hosts
fi

# user-data that is a script
if fetch "$MD/user-data" > /root/user-data 2>/dev/null && head -c 2 /root/user-data | grep -q '#!'; then
  chmod 0700 /root/user-data
  /root/user-data > /root/user-data.out 2>&1
fi
exit 0
`;

const pad = (n: number): string => String(n).padStart(2, '0');

/** /etc/image-id: the fields of the Eucalyptus starter images; `fields` overrides any. */
export function imageIdText(fields: Record<string, string>, report: GuestReport): string {
  const when = fields.timestamp ? new Date(fields.timestamp) : new Date();
  const version = `${when.getUTCFullYear()}.${pad(when.getUTCMonth() + 1)}.${pad(when.getUTCDate())}`;
  const date = `${when.getUTCFullYear()}${pad(when.getUTCMonth() + 1)}${pad(when.getUTCDate())}${pad(when.getUTCHours())}${pad(when.getUTCMinutes())}${pad(when.getUTCSeconds())}`;
  const stampHex = createHash('md5').update(`${Math.floor(when.getTime() / 1000)}\n`).digest('hex');
  const id = report.distro.id === 'unknown' ? 'linux' : report.distro.id;
  const name = fields.image_name ?? `euca-${id}-emi`;
  const arch = fields.image_arch ?? (report.arch === 'unknown' ? 'x86_64' : report.arch);
  const out: Record<string, string> = {
    image_name: name,
    image_version: fields.image_version ?? version,
    image_arch: arch,
    image_file: fields.image_file ?? `${name.replace(/-emi$/, '')}-${fields.image_version ?? version}-${arch}.img`,
    image_stamp: fields.image_stamp ?? `${stampHex.slice(0, 4)}-${stampHex.slice(4, 8)}`,
    image_date: fields.image_date ?? date,
    recipe_name: fields.recipe_name ?? `${report.distro.family === 'unknown' ? id : report.distro.family === 'amazon' ? 'amazon' : report.distro.id}-based`,
  };
  return Object.entries(out).map(([k, v]) => `${k}=${v}`).join('\n') + '\n';
}
