#!/usr/bin/env bash
# What the sample and the test suite both need first: the Debian tools and packages
# (scripts/setup-test-env.sh), the npm dependencies when the lock file is newer than the
# installed tree, and a build of every package plus the bundled command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test-env.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
