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
)
missing=()
for tool in "${!need[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${need[$tool]}")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-test-env: missing Debian packages: $pkgs (install them as root; tests that need them will skip outside CI)" >&2
  exit 0
fi
echo "setup-test-env: installing $pkgs" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
