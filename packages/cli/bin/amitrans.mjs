#!/usr/bin/env node
// The command npm links at install time. `npm ci` runs before `npm run build` makes dist/,
// and npm links no bin whose file is missing, so the link points here and this loads the build.
try {
  await import('../dist/amitrans.mjs');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('amitrans.mjs')) throw err;
  process.stderr.write('amitrans: not built yet: run `npm run build` in the repository first\n');
  process.exitCode = 1;
}
