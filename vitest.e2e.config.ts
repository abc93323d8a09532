import { defineConfig } from 'vitest/config';

// End-to-end tests with real guests (test/e2e). Run them with scripts/e2e.sh: on a
// host whose KVM runs guests natively it runs this config directly, elsewhere (the
// PVM-backed KVM of this project's machines) inside one nested-KVM L1 for the whole
// suite (test/harness/nested-kvm), because booting L1 costs 7-15 s.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    globalSetup: ['test/e2e/setup/require-real-guests.ts'],
    // Guests under nested KVM in TCG boot ~60x slower than on hardware.
    testTimeout: 10 * 60_000,
    hookTimeout: 40 * 60_000,
    pool: 'forks',
    // One file at a time: L1 has 2 vCPUs, and parallel guests would skew the
    // timings tests measure and multiply L1's memory use.
    fileParallelism: false,
  },
});
