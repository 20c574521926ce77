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
    // The browser and the server share two cores with other work: give every poll the same
    // 10 s a loaded machine may need (a poll ends as soon as it holds).
    expect: { poll: { timeout: 10_000 } },
  },
})
