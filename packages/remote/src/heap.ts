import { setFlagsFromString } from 'node:v8';

/**
 * How much V8 may grow the young generation after a scavenge: 1 keeps it at its initial
 * size. Remote transfers allocate many short-lived objects (the SDK's per-request
 * middleware and signing, the HTTP client's per-64-KiB body chunks); V8 answers by growing
 * the young generation to its maximum, 2 x 16 MiB on Node 20, which a conversion then
 * holds to the end. Kept small, it is scavenged more often, which also frees the dead body
 * chunks sooner. Issue 15's bench (2 GiB s3 -> s3): about 30 MiB less peak RSS, no more
 * CPU time. A runtime flag, read by V8 each time it considers growing (unlike
 * --max-semi-space-size, fixed when the heap is set up).
 */
const SEMI_SPACE_GROWTH_FACTOR = 1;

let allowed = false;
let bounded = false;

/**
 * Let remote transfers bound the young generation. A V8 flag is the whole process's, so a
 * library does not set it on its own: the amitrans CLI, whose process it is, opts in.
 */
export function allowHeapTuning(): void {
  allowed = true;
}

/** Keep the young generation small from now on, for the rest of the process (once), when allowed. */
export function boundYoungGeneration(): void {
  if (!allowed || bounded) return;
  bounded = true;
  setFlagsFromString(`--semi-space-growth-factor=${SEMI_SPACE_GROWTH_FACTOR}`);
}
