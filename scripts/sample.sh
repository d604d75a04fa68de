#!/usr/bin/env bash
# The main job on the bundled sample: build amitrans, build the sample AMI from Debian
# tools, and run amitrans on it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test-env.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npx tsc -b
bash scripts/make-sample.sh sample/ami.img >/dev/null
node packages/cli/dist/main.js info sample/ami.img
