#!/usr/bin/env bash
# Build a realistic paravirtual AMI, as a 2012-2016 Debian AMI looks: a debootstrap of
# Debian 12 (minbase + systemd-sysv, udev, ifupdown with DHCP on eth0, openssh-server with
# its host keys, initramfs-tools), the cloud kernel installed as a package (so dpkg knows
# it) with the initrd the guest's own update-initramfs made in the chroot, and the Xen
# conventions pv-grub AMIs carry: menu.lst `root (hd0)` with console=hvc0, /dev/xvda1 in
# fstab, a getty on hvc0, grub-legacy's stage files, on a bare ext3 filesystem with
# 128-byte inodes. root's password is "amitrans" (a boot test logs in on the console).
#
# Usage: scripts/make-debian-real-ami.sh OUT [--size SIZE]
# The debootstrap tree is cached under .tmp/debian-real (delete it to rebuild); several
# callers at once wait for one build (flock).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: make-debian-real-ami.sh OUT [--size SIZE]}
shift
size=1200M
while [ $# -gt 0 ]; do
  case $1 in
    --size) size=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
mirror=${AMITRANS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=$here/.tmp/debian-real
tree=$cache/tree
stages=$here/.tmp/debs/grub-legacy/root/usr/lib/grub/x86_64-pc
[ -d "$stages" ] || { echo "make-debian-real-ami: $stages missing; run scripts/setup-test-env.sh" >&2; exit 1; }
for tool in debootstrap mkfs.ext3 flock; do
  command -v "$tool" >/dev/null || { echo "make-debian-real-ami: $tool missing; run scripts/setup-test-env.sh" >&2; exit 1; }
done
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
# Built before by this same script (several test files ask at once): nothing to do.
stamp=$(sha256sum "$0" | cut -d' ' -f1)
if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then echo "$out"; exit 0; fi

build_tree() {
  rm -rf "$tree" "$tree.new"
  # Docs, man pages and locales are not needed to boot; leaving them out halves the tree.
  mkdir -p "$tree.new/etc/dpkg/dpkg.cfg.d"
  printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-exclude=/usr/share/man/*' \
    'path-exclude=/usr/share/locale/*' 'path-exclude=/usr/share/info/*' > "$tree.new/etc/dpkg/dpkg.cfg.d/01-nodoc"
  debootstrap --variant=minbase --merged-usr \
    --include=systemd-sysv,udev,kmod,ifupdown,isc-dhcp-client,iproute2,openssh-server,initramfs-tools,linux-image-cloud-amd64 \
    bookworm "$tree.new" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
    tail -20 "$cache/debootstrap.log" >&2
    echo "make-debian-real-ami: debootstrap failed (log: $cache/debootstrap.log)" >&2
    exit 1
  }
  mv "$tree.new" "$tree"
  touch "$tree/.amitrans-tree"
}
[ -e "$tree/.amitrans-tree" ] || build_tree

kver=$(ls "$tree/lib/modules" | head -1)
[ -f "$tree/boot/initrd.img-$kver" ] || { echo "make-debian-real-ami: the guest made no initrd for $kver" >&2; exit 1; }
[ -f "$tree/etc/ssh/ssh_host_ed25519_key" ] || { echo "make-debian-real-ami: openssh made no host keys" >&2; exit 1; }

# The AMI's own configuration goes into a copy, so the cached tree stays as debootstrap left it.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
cp -a "$tree" "$root"
rm -f "$root/.amitrans-tree"
cat > "$root/etc/fstab" <<'FSTAB'
/dev/xvda1  /     ext3  defaults,errors=remount-ro  0 1
/dev/xvdb   /mnt  auto  defaults,nobootwait         0 2
FSTAB
mkdir -p "$root/boot/grub"
cat > "$root/boot/grub/menu.lst" <<MENU
default 0
timeout 1
title Debian GNU/Linux 12, kernel $kver
root (hd0)
kernel /boot/vmlinuz-$kver root=/dev/xvda1 ro console=hvc0
initrd /boot/initrd.img-$kver
MENU
cp -a "$stages"/{stage1,stage2,e2fs_stage1_5} "$root/boot/grub/"
printf 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n' > "$root/etc/network/interfaces"
printf 'SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="12:31:39:0a:2b:3c", NAME="eth0"\n' \
  > "$root/etc/udev/rules.d/70-persistent-net.rules"
echo ip-10-0-0-1 > "$root/etc/hostname"
# The getty pv-grub AMIs run on the Xen console.
ln -sf /lib/systemd/system/serial-getty@.service "$root/etc/systemd/system/getty.target.wants/serial-getty@hvc0.service"
# root:amitrans, so a console login works in tests (SHA-512 crypt, salt fixed: a fixture).
hash=$(openssl passwd -6 -salt amitransfixture amitrans)
sed -i "s|^root:[^:]*:|root:$hash:|" "$root/etc/shadow"
echo 'Nov 22 10:00:00 ip-10-0-0-1 kernel: booted' >> "$root/var/log/syslog"
echo 'apt-get install something' > "$root/root/.bash_history"
# debootstrap leaves its downloads; an AMI made with apt-get clean has none.
rm -f "$root"/var/cache/apt/archives/*.deb

rm -f "$out" "$out.stamp" "$out.partial"
mkfs.ext3 -q -F -I 128 -L debian-root -U 5b7c3f0e-2d4a-4c1b-8e9f-6a0b1c2d3e4f -E root_owner=0:0 -d "$root" "$out.partial" "$size" 2>/dev/null
mv "$out.partial" "$out"
echo "$stamp" > "$out.stamp"
echo "$out"
