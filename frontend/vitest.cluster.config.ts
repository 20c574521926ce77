import { defineConfig } from 'vitest/config'

/** scripts/two-process.sh: the checks of two ticketd processes behind nginx (e2e-cluster/). */
export default defineConfig({
  test: {
    include: ['e2e-cluster/**/*.spec.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    sequence: { concurrent: false },
    reporters: ['verbose'],
  },
})
