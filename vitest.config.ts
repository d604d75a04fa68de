import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import workspace from './vitest.workspace.js';

export default defineConfig({
  // Workspace packages resolve to their TypeScript sources, so tests never run stale dist/
  // (and run on a fresh checkout before any build). Node-side resolution is the ssr one.
  resolve: { conditions: ['@amitrans/source'] },
  ssr: { resolve: { conditions: ['@amitrans/source'] } },
  test: {
    projects: workspace,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // One test file per core: most of the wall time is single-vCPU QEMU (TCG) boots and
    // child tools, so vitest's default (cores - 1: one worker on CI's 2 cores) left a core idle.
    maxWorkers: availableParallelism(),
  },
});
