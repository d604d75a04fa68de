#!/usr/bin/env bash
# The whole test suite, as a new user (and CI) runs it: oracle tools, dependencies,
# a type-checked build of every package, ESLint, then one vitest run over every package.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
npx tsc -p tsconfig.tests.json
npx eslint packages/*/src packages/*/test scripts
mkdir -p .tmp
status=0
npx vitest run --reporter=default --reporter=json --outputFile=.tmp/vitest.json "$@" || status=$?
node scripts/test-summary.mjs .tmp/vitest.json || status=1
exit $status
