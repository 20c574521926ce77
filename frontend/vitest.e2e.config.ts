import { defineConfig } from 'vitest/config'

/** `npm run test:e2e`: the journey in e2e/, in Node, one step after another. */
export default defineConfig({
  test: {
    include: ['e2e/**/*.spec.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 180_000,
    fileParallelism: false,
    reporters: ['verbose'],
  },
})
