import { defineConfig } from 'vitest/config';
import { hostHasKvm, hostKvmTestFiles } from './test/harness/host-kvm-tests.js';

// Unit and host-KVM tests run directly; tests that need a real guest (Linux with a
// userspace, Hermit apps) live in test/e2e and run through the nested-KVM harness.
// On a host with no /dev/kvm at all, the host tests that need one (marked, see
// test/harness/host-kvm-tests.js) are left out here and scripts/e2e.sh runs them in an L1.
const inL1 = process.env.VMRUN_NESTED_L1 === '1';
const kvmFilesElsewhere = hostHasKvm() ? [] : hostKvmTestFiles();
if (kvmFilesElsewhere.length > 0 && !process.env.VITEST_WORKER_ID) {
  console.log(
    `vitest: this host has no /dev/kvm: ${kvmFilesElsewhere.length} test files that boot guests on it are not run here ` +
      '(VMRUN_E2E_HOST_KVM=1 scripts/e2e.sh runs them in a nested-KVM L1)',
  );
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/arm64 boots aarch64 L1s (minutes each): npm run test:arm64.
    exclude: ['test/e2e/**', 'test/arm64/**', 'node_modules/**', ...kvmFilesElsewhere],
    // Inside L1 host code runs under TCG, many times slower: node itself starts in 1-3 s.
    testTimeout: inL1 ? 10 * 60_000 : 60_000,
    hookTimeout: inL1 ? 20 * 60_000 : 120_000,
    pool: 'forks',
  },
});
