#!/usr/bin/env node
// Bundle the built CLI (dist/main.js and every @amitrans package it imports) into one file,
// dist/amitrans.mjs, the `amitrans` command. Node resolves, reads and links each ES module
// on its own: the ~160 modules of the workspace cost 70 ms of every start, as much as the
// whole kernel copy of a small conversion. One file costs a few. Third-party packages stay
// external: yargs is loaded only when the fast parser gives up, and ext2fs finds its WASM
// next to its own files.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const here = join(import.meta.dirname, '..');
const root = join(here, '../..');
const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'));
// Every third-party runtime dependency of every workspace package stays external.
const external = new Set();
for (const dir of readJson(join(root, 'package.json')).workspaces) {
  for (const name of Object.keys(readJson(join(root, dir, 'package.json')).dependencies ?? {})) {
    if (!name.startsWith('@amitrans/')) external.add(name);
  }
}

await build({
  entryPoints: [join(here, 'dist/main.js')],
  outfile: join(here, 'dist/amitrans.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // The built JavaScript, as the packages publish it (not the @amitrans/source condition).
  conditions: ['default'],
  external: [...external],
  logLevel: 'warning',
});
