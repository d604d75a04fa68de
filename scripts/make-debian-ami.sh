#!/usr/bin/env bash
# Build a classic paravirtual AMI from real Debian packages: a bare ext3 root filesystem
# (no partition table) with Debian's cloud kernel and its modules, an initrd made here from
# busybox-static and the kernel's own disk-driver modules, and Xen-style configuration as
# pv-grub AMIs carry it (menu.lst with root (hd0) and console=hvc0, /dev/xvda1 in fstab,
# an hvc0 getty, HWADDR, persistent-net rules, a metadata-fetching rc.local). Its /sbin/init
# prints AMITRANS-BOOT-OK and powers off, so a boot test can look for the marker.
#
# Usage: scripts/make-debian-ami.sh OUT [--no-grub-stages] [--grub2] [--ext4] [--inode-size N] [--size SIZE] [--extra DIR] [--initrd FILE]
#        [--kernel DEB] [--modules 'MOD ...']
# Defaults: ext3 with 128-byte inodes, grub-legacy's stage files in /boot/grub, 400 MiB.
# --grub2 puts grub-pc-bin's i386-pc files (from this host's /usr/lib/grub/i386-pc) in
# /usr/lib/grub/i386-pc instead of the stage files, and makes menu.lst a symlink to grub.cfg
# holding the legacy menu, as Debian's bootstrap-vz PV AMIs do.
# --ext4 makes the filesystem ext4 with extents, 64bit and 256-byte inodes.
# --extra DIR copies DIR's tree into the root as well (the bench fills the filesystem with it).
# --initrd FILE ships FILE as the kernel's initrd instead of the busybox one made here (an
# initrd built by Debian's initramfs-tools or dracut: scripts/make-fixture-initrd.sh).
# --kernel DEB takes the kernel from .tmp/debs/DEB instead of linux-image-cloud-amd64 (e.g.
# linux-image-amd64, whose nvme and ext4 are modules); --modules 'MOD ...' ships only those
# modules and what they depend on (the generic kernel's whole tree is 400 MiB).
# Needs the packages unpacked by scripts/setup-test-env.sh under .tmp/debs.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: make-debian-ami.sh OUT [--no-grub-stages] [--grub2] [--ext4] [--inode-size N] [--size SIZE] [--extra DIR]}
shift
stages=1; inode=128; size=400M; extra=; grub2=0; ext4=0; initrd=; kdeb=linux-image-cloud-amd64; only_modules=
while [ $# -gt 0 ]; do
  case $1 in
    --no-grub-stages) stages=0 ;;
    --grub2) grub2=1; stages=0 ;;
    --ext4) ext4=1 ;;
    --inode-size) inode=$2; shift ;;
    --size) size=$2; shift ;;
    --extra) extra=$2; shift ;;
    --initrd) initrd=$2; shift ;;
    --kernel) kdeb=$2; shift ;;
    --modules) only_modules=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
debs=$here/.tmp/debs
kroot=$debs/$kdeb/root
bb=$debs/busybox-static/root/bin/busybox
for need in "$kroot/boot" "$bb"; do
  [ -e "$need" ] || { echo "make-debian-ami: $need missing; run scripts/setup-test-env.sh" >&2; exit 1; }
done
kver=$(ls "$kroot/lib/modules")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root

# --- the guest tree ---
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,root,boot/grub,var/log,mnt,lib/modules,etc/network,etc/udev/rules.d,etc/ssh}
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
cp -a "$kroot/boot/vmlinuz-$kver" "$kroot/boot/config-$kver" "$kroot/boot/System.map-$kver" "$root/boot/"
[ -n "$only_modules" ] || cp -a "$kroot/lib/modules/$kver" "$root/lib/modules/"
cat > "$root/sbin/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
echo "AMITRANS-BOOT-OK kernel=$(uname -r) root=$(awk '$2 == "/" {print $1}' /proc/mounts | tail -1) cmdline=$(cat /proc/cmdline)"
echo "--- /etc/fstab ---"
cat /etc/fstab
echo "--- end ---"
poweroff -f
INIT
chmod 0755 "$root/sbin/init"
cat > "$root/etc/os-release" <<'OS'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
ID=debian
OS
echo 12.0 > "$root/etc/debian_version"
cat > "$root/etc/fstab" <<'FSTAB'
/dev/xvda1  /     ext3  defaults,errors=remount-ro  0 1
/dev/xvdb   /mnt  auto  defaults                    0 2
proc        /proc proc  defaults                    0 0
FSTAB
cat > "$root/boot/grub/menu.lst" <<MENU
default 0
timeout 1
title Debian GNU/Linux, kernel $kver
root (hd0)
kernel /boot/vmlinuz-$kver root=/dev/xvda1 ro console=hvc0
initrd /boot/initrd.img-$kver
MENU
cat > "$root/etc/inittab" <<'INITTAB'
id:2:initdefault:
si::sysinit:/etc/init.d/rcS
1:2345:respawn:/sbin/getty 38400 tty1
hvc0:2345:respawn:/sbin/getty 38400 hvc0
INITTAB
printf 'console\ntty1\nhvc0\n' > "$root/etc/securetty"
printf 'auto lo\niface lo inet loopback\nauto eth0\niface eth0 inet dhcp\n' > "$root/etc/network/interfaces"
printf 'SUBSYSTEM=="net", ACTION=="add", ATTR{address}=="12:31:39:0a:2b:3c", NAME="eth0"\n' > "$root/etc/udev/rules.d/70-persistent-net.rules"
cat > "$root/etc/rc.local" <<'RC'
#!/bin/sh -e
curl -s http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key > /root/.ssh/authorized_keys
exit 0
RC
chmod 0755 "$root/etc/rc.local"
echo 0123456789abcdef0123456789abcdef > "$root/etc/machine-id"
echo 'dummy host key' > "$root/etc/ssh/ssh_host_rsa_key"
chmod 0600 "$root/etc/ssh/ssh_host_rsa_key"
echo 'apt-get install something' > "$root/root/.bash_history"
echo 'Nov 22 10:00:00 ip-10-0-0-1 kernel: booted' > "$root/var/log/messages"
if [ $stages -eq 1 ]; then
  [ -d "$debs/grub-legacy/root/usr/lib/grub/x86_64-pc" ] || { echo "make-debian-ami: grub-legacy not unpacked" >&2; exit 1; }
  cp -a "$debs/grub-legacy/root/usr/lib/grub/x86_64-pc"/{stage1,stage2,e2fs_stage1_5} "$root/boot/grub/"
fi
if [ $grub2 -eq 1 ]; then
  [ -f /usr/lib/grub/i386-pc/lzma_decompress.img ] || { echo "make-debian-ami: /usr/lib/grub/i386-pc missing; install grub-pc-bin (scripts/setup-test-env.sh)" >&2; exit 1; }
  mkdir -p "$root/usr/lib/grub"
  cp -a /usr/lib/grub/i386-pc "$root/usr/lib/grub/"
  mv "$root/boot/grub/menu.lst" "$root/boot/grub/grub.cfg"
  ln -s grub.cfg "$root/boot/grub/menu.lst"
fi
printf 'alias scsi_hostadapter xenblk\nalias eth0 xennet\n' > "$root/etc/modprobe.conf"

# --- the initrd: busybox + the disk drivers (with their dependencies, in load order) ---
ird=$work/initrd
mkdir -p "$ird"/{bin,proc,sys,dev,newroot,etc,lib/modules/"$kver"}
cp "$bb" "$ird/bin/busybox"
for applet in sh mount insmod switch_root findfs sleep cat echo poweroff; do ln -sf busybox "$ird/bin/$applet"; done
# The .deb carries no modules.dep (depmod makes it when the package is installed): make it
# in a scratch copy of the module tree, as installation would, and ship it in the guest too.
mkdir -p "$work/dep/lib/modules"
cp -a "$kroot/lib/modules/$kver" "$work/dep/lib/modules/"
depmod -b "$work/dep" "$kver"
moddir=$work/dep/lib/modules/$kver
if [ -n "$only_modules" ]; then
  # Only the modules asked for and their dependencies, then depmod over that tree.
  for name in $only_modules; do
    modprobe -d "$work/dep" -S "$kver" --show-depends "$name" | awk '$1 == "insmod" {print $2}'
  done | sort -u | while read -r f; do
    rel=${f#"$moddir"/}
    mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
    cp "$f" "$root/lib/modules/$kver/$rel"
  done
  cp "$moddir"/modules.builtin* "$moddir"/modules.order "$root/lib/modules/$kver/"
  depmod -b "$root" "$kver"
else
  cp "$moddir"/modules.* "$root/lib/modules/$kver/"
fi
# Resolve dependencies from modules.dep, deepest first.
declare -A seen=()
order=()
add_module() {
  local path=$1
  [ -n "${seen[$path]:-}" ] && return
  seen[$path]=1
  local deps
  deps=$(awk -v m="$path:" '$1 == m { $1 = ""; print }' "$moddir/modules.dep")
  for d in $deps; do add_module "$d"; done
  order+=("$path")
}
for name in virtio_pci virtio_blk virtio_scsi xen-blkfront ata_piix sd_mod; do
  path=$(awk -F: -v n="/$name.ko" 'index($1, n) == length($1) - length(n) + 1 {print $1; exit}' "$moddir/modules.dep")
  [ -n "$path" ] || { echo "make-debian-ami: module $name not in modules.dep" >&2; exit 1; }
  add_module "$path"
done
for m in "${order[@]}"; do
  mkdir -p "$ird/lib/modules/$kver/$(dirname "$m")"
  cp "$moddir/$m" "$ird/lib/modules/$kver/$m"
done
printf '%s\n' "${order[@]}" > "$ird/etc/initrd-modules"
cat > "$ird/init" <<INIT
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read m; do insmod /lib/modules/$kver/\$m 2>/dev/null; done < /etc/initrd-modules
root=
for a in \$(cat /proc/cmdline); do case \$a in root=*) root=\${a#root=} ;; esac; done
i=0
while [ \$i -lt 100 ]; do
  case \$root in UUID=*|LABEL=*) dev=\$(findfs "\$root" 2>/dev/null) ;; *) dev=\$root ;; esac
  [ -n "\$dev" ] && [ -b "\$dev" ] && break
  sleep 0.1
  i=\$((i + 1))
done
echo "amitrans-initrd: root \$root is \$dev"
mount -o ro "\$dev" /newroot || { echo "amitrans-initrd: cannot mount \$root"; poweroff -f; }
exec switch_root /newroot /sbin/init
INIT
chmod 0755 "$ird/init"
(cd "$ird" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -9n) > "$root/boot/initrd.img-$kver"

if [ -n "$initrd" ]; then cp "$initrd" "$root/boot/initrd.img-$kver"; fi

rm -f "$out"
if [ -n "$extra" ]; then cp -a "$extra/." "$root/"; fi
if [ $ext4 -eq 1 ]; then
  sed -i 's/ ext3 / ext4 /' "$root/etc/fstab"
  mkfs.ext4 -q -F -O extent,64bit -I 256 -L debian-root -U 3d1e5c2a-7b4f-4a8e-9c6d-5f0e1a2b3c4d -E root_owner=0:0 -d "$root" "$out" "$size"
  echo "$out"
  exit 0
fi
mkfs.ext3 -q -F -I "$inode" -L debian-root -U 3d1e5c2a-7b4f-4a8e-9c6d-5f0e1a2b3c4d -E root_owner=0:0 -d "$root" "$out" "$size"
echo "$out"
