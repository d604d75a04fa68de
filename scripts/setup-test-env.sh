#!/usr/bin/env bash
# Install the Debian tools the tests use as oracles and fixture builders, when missing.
# Runs as root on a fresh Debian machine (CI); elsewhere it only says what is missing.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

# tool -> Debian package
declare -A need=(
  [qemu-img]=qemu-utils
  [mkfs.ext4]=e2fsprogs
  [dumpe2fs]=e2fsprogs
  [debugfs]=e2fsprogs
  [e2fsck]=e2fsprogs
  [sfdisk]=fdisk
  [xz]=xz-utils
  [bzip2]=bzip2
  [gzip]=gzip
  [tar]=tar
  [cpio]=cpio
  [zstd]=zstd
  [lz4]=lz4
  [dpkg-deb]=dpkg
  [depmod]=kmod
  [mkinitramfs]=initramfs-tools-core
  [lsinitramfs]=initramfs-tools-core
  [dracut]=dracut-core
  [unshare]=util-linux
  [qemu-system-x86_64]=qemu-system-x86
  [xmllint]=libxml2-utils
  [debootstrap]=debootstrap
  [ssh-keygen]=openssh-client
  # GRUB 2's oracle (grub-mkimage, /usr/lib/grub/i386-pc/grub-bios-setup) and its i386-pc files.
  [grub-mkimage]=grub-pc-bin
  [readelf]=binutils
  [unshare]=util-linux
  [zerofree]=zerofree
  [pigz]=pigz
  [openssl]=openssl
  # The fleet's queue (BullMQ) in tests: a Redis server on a free 127.0.0.1 port, no persistence (#18).
  [redis-server]=redis-server
  # The fleet report page, rendered headless: the DOM's counts against report.json (#18).
  [chromium]=chromium
)
missing=()
for tool in "${!need[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${need[$tool]}")
done
# grub-common alone also gives grub-mkimage: the i386-pc files come with grub-pc-bin.
[ -f /usr/lib/grub/i386-pc/kernel.img ] || missing+=(grub-pc-bin)
# grub-legacy's shell (the oracle for the GRUB installer) is a 32-bit binary.
[ -e /lib/ld-linux.so.2 ] || missing+=(libc6-i386)
# The bundle manifest oracle: lxml's own serialisation, under the system python3.
/usr/bin/python3 -c 'import lxml' 2>/dev/null || missing+=(python3-lxml)
# boto3 is the independent S3 client that checks what the S3 sink uploaded (#15).
python3 -c 'import boto3' >/dev/null 2>&1 || missing+=(python3-boto3)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
updated=0
apt_update() {
  if [ $updated -eq 0 ]; then apt-get update -qq; updated=1; fi
}
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-test-env: missing Debian packages: $pkgs (install them as root; tests that need them will skip outside CI)" >&2
  else
    echo "setup-test-env: installing $pkgs" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt_update
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  fi
fi

# Debian packages the tests take files from without installing them (stage files and the
# static grub shell of grub-legacy, ...): downloaded and unpacked under .tmp/debs/<name>.
debs_dir="$(cd "$(dirname "$0")/.." && pwd)/.tmp/debs"
mkdir -p "$debs_dir"
# linux-image-cloud-amd64 and linux-image-amd64 are metapackages: fetch the kernel package
# each depends on. The generic kernel (nvme, ext4 as modules) is for the ec2-hvm test of the
# initrd step adding nvme (#21).
for deb in grub-legacy busybox-static linux-image-cloud-amd64 linux-image-amd64; do
  [ -f "$debs_dir/$deb/.done" ] && continue
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
    echo "setup-test-env: cannot fetch Debian package $deb here (no apt-get/dpkg-deb)" >&2
    continue
  fi
  rm -rf "${debs_dir:?}/$deb" && mkdir -p "$debs_dir/$deb"
  pkg=$deb
  if [ "$deb" = linux-image-cloud-amd64 ] || [ "$deb" = linux-image-amd64 ]; then
    pkg=$(apt-cache depends "$deb" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
      apt_update
      pkg=$(apt-cache depends "$deb" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    fi
    [ -n "$pkg" ] || { echo "setup-test-env: cannot resolve $deb" >&2; continue; }
  fi
  if ! (cd "$debs_dir/$deb" && apt-get download -qq "$pkg" 2>/dev/null); then
    [ "$(id -u)" -eq 0 ] && apt_update
    (cd "$debs_dir/$deb" && apt-get download -qq "$pkg" 2>/dev/null) || { echo "setup-test-env: apt-get download $pkg failed" >&2; continue; }
  fi
  dpkg-deb -x "$debs_dir/$deb"/*.deb "$debs_dir/$deb/root" && touch "$debs_dir/$deb/.done"
done

# Some kernels (this project's CI machines among them) are built without 32-bit x86
# support, so grub-legacy's i386 shell cannot exec; the tests then run it under qemu-i386.
grub_shell="$debs_dir/grub-legacy/root/usr/sbin/grub"
if [ -x "$grub_shell" ] && ! "$grub_shell" --version >/dev/null 2>&1 && ! command -v qemu-i386 >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup-test-env: this kernel cannot run 32-bit binaries; installing qemu-user for grub's shell" >&2
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user >/dev/null
  else
    echo "setup-test-env: this kernel cannot run 32-bit binaries and qemu-user is missing (install it as root)" >&2
  fi
fi
