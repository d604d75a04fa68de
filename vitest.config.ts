import { defineConfig } from 'vitest/config';
import workspace from './vitest.workspace.js';

export default defineConfig({
  resolve: {
    // Workspace packages resolve to their TypeScript sources, so tests never run stale dist/.
    conditions: ['@amitrans/source'],
  },
  test: {
    projects: workspace,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
