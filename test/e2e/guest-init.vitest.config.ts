import { defineConfig } from 'vitest/config';

// Runs test/e2e/guest-init.test.ts, which the default config excludes (it boots real
// guests): npx vitest run --config test/e2e/guest-init.vitest.config.ts
export default defineConfig({
  test: {
    include: ['test/e2e/guest-init.test.ts'],
    testTimeout: 20 * 60_000,
    hookTimeout: 40 * 60_000,
    pool: 'forks',
  },
});
