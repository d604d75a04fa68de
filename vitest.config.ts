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
  },
});
