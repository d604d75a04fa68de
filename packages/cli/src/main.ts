#!/usr/bin/env node
import { constants } from 'node:os';
import { abortAllSinksSync, cleanupRunSync, runInterruptHandlers } from '@amitrans/block';

// However the run ends, nothing half-written is left at a destination, no temporary
// (decompressed input, OVA spool) and no child (7-Zip) outlives it. The handlers go in
// before the commands are loaded, so a signal during start-up is handled the same way.
process.on('exit', () => {
  abortAllSinksSync();
  cleanupRunSync();
});
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    const code = 128 + constants.signals[signal];
    if (stopping) process.exit(code);
    stopping = true;
    // Aborting an S3 multipart upload needs the network: a few seconds for that, then exit
    // (a second signal exits at once). The object never appears either way.
    void runInterruptHandlers(5000).finally(() => process.exit(code));
  });
}

// `amitrans inspect x | head`: a closed stdout ends the program quietly, as for any Unix tool
// (a partial output written to stdout is the reader's to discard).
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

// This process is ours: remote transfers may bound V8's young generation (see remote's heap.ts).
const { allowHeapTuning } = await import('@amitrans/remote');
allowHeapTuning();
const { runCli } = await import('./cli.js');
process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
