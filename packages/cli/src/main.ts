#!/usr/bin/env node
import { abortAllSinksSync } from '@amitrans/block';
import { runCli } from './cli.js';

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // Nothing half-written is left at a destination.
    abortAllSinksSync();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

// `amitrans inspect x | head`: a closed stdout ends the program quietly, as for any Unix tool.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
