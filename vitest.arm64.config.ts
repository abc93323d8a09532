import { defineConfig } from 'vitest/config';

// The KVM arm64 backend with real arm64 guests (test/arm64), each test booting an
// aarch64 nested-KVM L1 (test/harness/nested-kvm --arch aarch64). Not part of
// `npm test` (minutes per L1 under TCG); run with `npm run test:arm64`.
export default defineConfig({
  test: {
    include: ['test/arm64/**/*.test.ts'],
    testTimeout: 30 * 60_000,
    hookTimeout: 15 * 60_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
