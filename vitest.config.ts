import { defineConfig } from 'vitest/config';

// Unit and host-KVM tests run directly; tests that need a real guest (Linux with a
// userspace, Hermit apps) live in test/e2e and run through the nested-KVM harness.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/e2e/**', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
