import { defineConfig } from 'vitest/config';

// The KVM arm64 backend with real arm64 guests (test/arm64), each test booting an
// aarch64 nested-KVM L1 (test/harness/nested-kvm --arch aarch64), through
// scripts/e2e-arm64.sh: `npm test` runs the backend's boot and snapshot files, `npm
// run test:arm64` every file (minutes per L1 under TCG).
export default defineConfig({
  test: {
    include: ['test/arm64/**/*.test.ts'],
    testTimeout: 30 * 60_000,
    hookTimeout: 15 * 60_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
