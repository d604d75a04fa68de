#!/usr/bin/env bash
# Build an initrd for the unpacked Debian cloud kernel (.tmp/debs/linux-image-cloud-amd64)
# with Debian's own initrd builders, limited to the modules named, as an AMI's initrd is
# (xen-blkfront only: no virtio, no ata):
#   initramfs-tools: mkinitramfs with MODULES=list and the modules in its modules file;
#   dracut:          dracut --no-hostonly --drivers "<modules>" without the kernel-modules dracut
#                    modules (so no generic disk drivers; crypto and virtiofs come with their modules).
# Neither builder takes another module tree, so the kernel's modules (with depmod's files)
# and config are laid over /usr/lib/modules and /boot in a private mount namespace
# (unshare -m): nothing on the host changes.
# Usage: scripts/make-fixture-initrd.sh initramfs-tools|dracut OUT MODULE...
# KERNEL_DEB=linux-image-amd64 takes that unpacked kernel instead of the cloud one.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
here=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:?usage: make-fixture-initrd.sh initramfs-tools|dracut OUT MODULE...}
out=${2:?usage: make-fixture-initrd.sh initramfs-tools|dracut OUT MODULE...}
shift 2
kroot=$here/.tmp/debs/${KERNEL_DEB:-linux-image-cloud-amd64}/root
[ -d "$kroot/lib/modules" ] || { echo "make-fixture-initrd: $kroot missing; run scripts/setup-test-env.sh" >&2; exit 1; }
kver=$(ls "$kroot/lib/modules")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lib/modules" "$work/boot"
cp -a "$kroot/lib/modules/$kver" "$work/lib/modules/"
depmod -b "$work" "$kver"
cp "$kroot/boot/config-$kver" "$kroot/boot/System.map-$kver" "$work/boot/"
case $kind in
  initramfs-tools)
    cp -a /etc/initramfs-tools "$work/conf"
    sed -i 's/^MODULES=.*/MODULES=list/; s/^COMPRESS=.*/COMPRESS=zstd/' "$work/conf/initramfs.conf"
    printf '%s\n' "$@" > "$work/conf/modules"
    build="mkinitramfs -d '$work/conf' -o '$work/initrd' '$kver'"
    ;;
  dracut)
    build="dracut --no-hostonly --no-hostonly-cmdline --kver '$kver' --kmoddir '/usr/lib/modules/$kver' --drivers '$*' --omit 'kernel-modules kernel-modules-extra kernel-network-modules qemu qemu-net systemd systemd-initrd dracut-systemd plymouth i18n nvdimm resume' --gzip --force '$work/initrd' '$kver'"
    ;;
  *) echo "make-fixture-initrd: unknown builder $kind" >&2; exit 2 ;;
esac
unshare -m sh -c "mount -t overlay overlay -o lowerdir='$work/lib':/usr/lib /usr/lib && mkdir -p /boot && mount --bind '$work/boot' /boot && $build" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
mv "$work/initrd" "$out"
