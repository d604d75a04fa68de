#!/usr/bin/env bash
# The main job on the bundled sample: build amitrans, build the sample PV AMI from Debian
# packages (cached after the first run), inspect it, and translate it for KVM.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
mkdir -p sample
if [ ! -f sample/debian-ami.img ] || [ scripts/make-debian-ami.sh -nt sample/debian-ami.img ]; then
  echo "== building the sample PV AMI from Debian packages (once)" >&2
  bash scripts/make-debian-ami.sh sample/debian-ami.img >/dev/null
fi
amitrans() { node packages/cli/dist/amitrans.mjs "$@"; }
echo "== amitrans inspect sample/debian-ami.img"
amitrans inspect sample/debian-ami.img | sed -n '1,/^Kernels$/p' | sed '$d'
echo "== amitrans translate sample/debian-ami.img sample/debian-kvm.qcow2 --target kvm"
amitrans translate sample/debian-ami.img sample/debian-kvm.qcow2 --target kvm
echo "== amitrans translate sample/debian-ami.img sample/debian.ova --target virtualbox (the seed pipeline's appliance)"
amitrans translate sample/debian-ami.img sample/debian.ova --target virtualbox
