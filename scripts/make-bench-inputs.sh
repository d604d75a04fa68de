#!/usr/bin/env bash
# Build the raw inputs of `npm run bench` into a directory (default .tmp/bench/inputs), once:
# an existing file is kept, so reruns are free. Names after the directory build only those
# (`make-bench-inputs.sh DIR sparse1t`); none builds all.
#   ext3.raw    2 GiB ext3 root filesystem, ~40% full of files from installed Debian packages
#   random.raw  1 GiB of pseudo-random bytes (AES-CTR keystream: the same bytes every time)
#   disk.raw    3 GiB MBR disk (sfdisk) with one ext4 partition holding the same files
#   ami.raw     2 GiB PV AMI from scripts/make-debian-ami.sh, plus the same files (~40% full)
#   ami-lean.raw  the same AMI without the extra files (kernel, modules, initrd: ~6% full)
#   sparse1t.raw  1 TiB file holding a fresh ext4 made lazily (no inode tables or journal
#               written): about 16 MiB of data, the rest holes (issue 22's scale case)
# The filesystems are sparse files, as mkfs leaves them; random.raw is fully allocated.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
out="${1:-$(dirname "$0")/../.tmp/bench/inputs}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(ext3 random disk ami ami-lean sparse1t)
wanted() { [[ " ${names[*]} " == *" $1 "* ]]; }
needs_stage() { wanted ext3 || wanted disk || wanted ami; }
stage_mib=800

stage="$out/stage"
if needs_stage && [ ! -f "$stage.done" ]; then
  rm -rf "$stage" "$stage.list"
  mkdir -p "$stage"
  # Regular files listed by dpkg for every installed package, in package order, until the
  # running total reaches stage_mib: real binaries, libraries, text, compressed docs.
  dpkg-query -W -f='${Package}\n' | sort | xargs dpkg-query -L 2>/dev/null |
    grep -E '^/usr/' | sort -u |
    while IFS= read -r f; do [ -f "$f" ] && [ ! -L "$f" ] && printf '%s\n' "$f"; done |
    xargs -d '\n' stat -c '%s %n' |
    awk -v max=$((stage_mib * 1024 * 1024)) '{ n = $1; sub(/^[0-9]+ /, ""); if (total + n <= max) { total += n; print } }' >"$stage.list"
  tar -cf - --no-recursion -T "$stage.list" 2>/dev/null | tar -xf - -C "$stage"
  touch "$stage.done"
fi

if wanted ext3 && [ ! -f "$out/ext3.raw" ]; then
  rm -f "$out/ext3.raw.tmp"
  mkfs.ext3 -q -F -L benchroot -U 6a2b1c3d-0000-4000-8000-000000000001 -E root_owner=0:0 \
    -d "$stage" "$out/ext3.raw.tmp" 2G >/dev/null
  mv "$out/ext3.raw.tmp" "$out/ext3.raw"
fi

if wanted random && [ ! -f "$out/random.raw" ]; then
  openssl enc -aes-128-ctr -nosalt -K 00112233445566778899aabbccddeeff -iv 0 </dev/zero 2>/dev/null |
    head -c $((1024 * 1024 * 1024)) >"$out/random.raw.tmp" || true # openssl ends on SIGPIPE
  [ "$(stat -c %s "$out/random.raw.tmp")" = $((1024 * 1024 * 1024)) ]
  mv "$out/random.raw.tmp" "$out/random.raw"
fi

if wanted disk && [ ! -f "$out/disk.raw" ]; then
  rm -f "$out/disk.raw.tmp" "$out/part.tmp"
  truncate -s 3G "$out/disk.raw.tmp"
  printf 'label: dos\nlabel-id: 0x0be4c0de\nstart=2048, type=83, bootable\n' | sfdisk -q "$out/disk.raw.tmp"
  part_bytes=$(( $(stat -c %s "$out/disk.raw.tmp") - 2048 * 512 ))
  mkfs.ext4 -q -F -L benchdisk -U 6a2b1c3d-0000-4000-8000-000000000002 -E root_owner=0:0 \
    -d "$stage" "$out/part.tmp" "$((part_bytes / 1024))k" >/dev/null
  # Copy the partition into place; zero blocks stay holes, as a filesystem image would have them.
  dd if="$out/part.tmp" of="$out/disk.raw.tmp" bs=1M seek=1 conv=sparse,notrunc status=none
  rm -f "$out/part.tmp"
  mv "$out/disk.raw.tmp" "$out/disk.raw"
fi

if wanted sparse1t && [ ! -f "$out/sparse1t.raw" ]; then
  rm -f "$out/sparse1t.raw.tmp"
  truncate -s 1T "$out/sparse1t.raw.tmp"
  mkfs.ext4 -q -F -L bench1t -U 6a2b1c3d-0000-4000-8000-000000000003 -E lazy_itable_init=1,lazy_journal_init=1 "$out/sparse1t.raw.tmp" >/dev/null
  mv "$out/sparse1t.raw.tmp" "$out/sparse1t.raw"
fi

here=$(cd "$(dirname "$0")" && pwd)
for ami in ami ami-lean; do
  wanted "$ami" || continue
  [ -f "$out/$ami.raw" ] && continue
  # The AMI builder takes its kernel, modules and busybox from the unpacked Debian packages.
  [ -d "$here/../.tmp/debs/linux-image-cloud-amd64/root/boot" ] || bash "$here/setup-test-env.sh" >&2
  if [ "$ami" = ami ]; then extra=(--extra "$stage"); else extra=(); fi
  bash "$here/make-debian-ami.sh" "$out/$ami.raw.tmp" --size 2G "${extra[@]}" >/dev/null
  mv "$out/$ami.raw.tmp" "$out/$ami.raw"
done

for f in "${names[@]}"; do
  printf '%s.raw: %s MiB virtual, %s MiB allocated\n' "$f" \
    $(( $(stat -c %s "$out/$f.raw") / 1048576 )) $(( $(stat -c %b "$out/$f.raw") * 512 / 1048576 ))
done
