#!/usr/bin/env bash
# Build the bundled sample: a classic paravirtual AMI root filesystem (bare ext3, no
# partition table, booted by pv-grub from /boot/grub/menu.lst), from Debian's e2fsprogs.
# Usage: scripts/make-sample.sh [OUT]   (default sample/ami.img)
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
out=${1:-sample/ami.img}
mkdir -p "$(dirname "$out")"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{boot/grub,etc/sysconfig/network-scripts,etc/rc.d,etc/modprobe.d,root,tmp,var/log,lib/modules/2.6.32-ec2}
chmod 1777 "$root/tmp"
cat > "$root/etc/os-release" <<'OS'
NAME="Sample AMI Linux"
ID=sample
VERSION_ID="1"
PRETTY_NAME="Sample AMI Linux 1 (amitrans fixture)"
OS
cat > "$root/etc/fstab" <<'FSTAB'
/dev/sda1  /         ext3    defaults        1 1
/dev/sdb   /mnt      ext3    defaults        0 0
none       /dev/pts  devpts  gid=5,mode=620  0 0
none       /proc     proc    defaults        0 0
none       /sys      sysfs   defaults        0 0
FSTAB
cat > "$root/boot/grub/menu.lst" <<'MENU'
default 0
timeout 1
title Sample AMI (2.6.32-ec2)
    root (hd0)
    kernel /boot/vmlinuz-2.6.32-ec2 root=/dev/sda1 ro console=hvc0
    initrd /boot/initrd.img-2.6.32-ec2
MENU
cat > "$root/etc/inittab" <<'INITTAB'
id:3:initdefault:
si::sysinit:/etc/rc.d/rc.sysinit
1:2345:respawn:/sbin/mingetty tty1
xvc0:2345:respawn:/sbin/mingetty xvc0
INITTAB
printf 'console\ntty1\nxvc0\nhvc0\n' > "$root/etc/securetty"
printf 'alias scsi_hostadapter xenblk\nalias eth0 xennet\n' > "$root/etc/modprobe.d/xen.conf"
cat > "$root/etc/rc.d/rc.local" <<'RC'
#!/bin/sh
# fetch the ssh key from the instance metadata service
curl -s http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key > /root/.ssh/authorized_keys
RC
chmod 0755 "$root/etc/rc.d/rc.local"
printf 'DEVICE=eth0\nBOOTPROTO=dhcp\nHWADDR=12:31:39:0a:2b:3c\nONBOOT=yes\n' > "$root/etc/sysconfig/network-scripts/ifcfg-eth0"
echo 'ls -la /' > "$root/root/.bash_history"
chmod 0600 "$root/root/.bash_history"

rm -f "$out"
mkfs.ext3 -q -F -L sample-root -U 8f1c2b5e-3d4a-4b6c-9e7f-0a1b2c3d4e5f -E root_owner=0:0 -d "$root" "$out" 64M
echo "$out"
