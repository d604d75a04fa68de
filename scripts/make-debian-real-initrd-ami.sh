#!/usr/bin/env bash
# The realistic Debian AMI (scripts/make-debian-real-ami.sh) with its initrd rebuilt the way
# an AMI's initrd is: limited to xen-blkfront (no virtio, no ata), so a virtio or IDE
# target needs the initrd step to boot.
#   initramfs-tools: the guest's own mkinitramfs, run in its debootstrap tree (chroot, in a
#                    private mount namespace over a throw-away overlay), with MODULES=list and
#                    xen-blkfront alone in /etc/initramfs-tools/modules;
#   dracut:          Debian's dracut (dracut-core on this host; the guest has none) with
#                    --no-hostonly and --drivers xen-blkfront, against the guest's own
#                    /lib/modules/<kver> laid over /usr/lib in a private mount namespace.
# The new initrd (and for initramfs-tools the configuration that made it) is written into a
# copy of the AMI with debugfs; the cached AMI and tree are only read.
#
# Usage: scripts/make-debian-real-initrd-ami.sh initramfs-tools|dracut AMI OUT
# AMI is .tmp/debian-real/ami.img; its tree is .tmp/debian-real/tree next to it.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
kind=${1:?usage: make-debian-real-initrd-ami.sh initramfs-tools|dracut AMI OUT}
ami=${2:?usage: make-debian-real-initrd-ami.sh initramfs-tools|dracut AMI OUT}
out=${3:?usage: make-debian-real-initrd-ami.sh initramfs-tools|dracut AMI OUT}
tree=$(dirname "$ami")/tree
[ -e "$tree/.amitrans-tree" ] || { echo "make-debian-real-initrd-ami: $tree missing; build the AMI first" >&2; exit 1; }
for tool in debugfs unshare flock; do
  command -v "$tool" >/dev/null || { echo "make-debian-real-initrd-ami: $tool missing; run scripts/setup-test-env.sh" >&2; exit 1; }
done
mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
flock 9
# Same script, same AMI: the cached copy is current.
stamp="$(sha256sum "$0" | cut -d' ' -f1) $(cat "$ami.stamp" 2>/dev/null) $kind"
if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then echo "$out"; exit 0; fi

kver=$(ls "$tree/lib/modules" | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case $kind in
  initramfs-tools)
    mkdir -p "$work/upper" "$work/wk" "$work/root"
    # shellcheck disable=SC2016
    unshare -m sh -ec '
      mount -t overlay overlay -o "lowerdir=$1,upperdir=$2/upper,workdir=$2/wk" "$2/root"
      r=$2/root
      mount -t proc proc "$r/proc"; mount --bind /dev "$r/dev"; mount -t tmpfs tmpfs "$r/tmp"
      sed -i "s/^MODULES=.*/MODULES=list/" "$r/etc/initramfs-tools/initramfs.conf"
      printf "%s\n" "# Modules an AMI on Xen needs (MODULES=list: nothing else)" xen-blkfront > "$r/etc/initramfs-tools/modules"
      chroot "$r" mkinitramfs -o /tmp/initrd "$3"
      cp "$r/tmp/initrd" "$2/initrd"
      cp "$r/etc/initramfs-tools/initramfs.conf" "$r/etc/initramfs-tools/modules" "$2/"
    ' sh "$tree" "$work" "$kver" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
    ;;
  dracut)
    command -v dracut >/dev/null || { echo "make-debian-real-initrd-ami: dracut missing; run scripts/setup-test-env.sh" >&2; exit 1; }
    mkdir -p "$work/lib/modules" "$work/boot"
    cp -a "$tree/lib/modules/$kver" "$work/lib/modules/"
    cp "$tree/boot/config-$kver" "$tree/boot/System.map-$kver" "$work/boot/"
    # Generic disk drivers (kernel-modules) and the host's own bits stay out: as an AMI's
    # initrd, it drives only the Xen disk.
    unshare -m sh -c "mount -t overlay overlay -o lowerdir='$work/lib':/usr/lib /usr/lib && mkdir -p /boot && mount --bind '$work/boot' /boot && \
      dracut --no-hostonly --no-hostonly-cmdline --kver '$kver' --kmoddir '/usr/lib/modules/$kver' --drivers xen-blkfront \
      --omit 'kernel-modules kernel-modules-extra kernel-network-modules qemu qemu-net systemd systemd-initrd dracut-systemd plymouth i18n nvdimm resume' \
      --gzip --force '$work/initrd' '$kver'" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
    ;;
  *) echo "make-debian-real-initrd-ami: unknown builder $kind" >&2; exit 2 ;;
esac

rm -f "$out" "$out.stamp"
cp --sparse=always "$ami" "$out.partial"
put() { # put HOSTFILE GUESTPATH: replace a file of the copy
  debugfs -w -R "rm $2" "$out.partial" >/dev/null 2>&1
  debugfs -w -R "write $1 $2" "$out.partial" >/dev/null 2>&1
  debugfs -w -R "sif $2 mode 0100644" "$out.partial" >/dev/null 2>&1
  debugfs -R "stat $2" "$out.partial" 2>/dev/null | grep -q "Size: $(stat -c %s "$1")\b" || { echo "make-debian-real-initrd-ami: could not write $2" >&2; exit 1; }
}
put "$work/initrd" "/boot/initrd.img-$kver"
if [ "$kind" = initramfs-tools ]; then
  put "$work/initramfs.conf" /etc/initramfs-tools/initramfs.conf
  put "$work/modules" /etc/initramfs-tools/modules
fi
mv "$out.partial" "$out"
echo "$stamp" > "$out.stamp"
echo "$out"
