import { defineConfig } from 'vitest/config';
import { E2E_INCLUDE } from './test/e2e/setup/e2e-files.js';

// End-to-end tests with real guests (test/e2e). Run them with scripts/e2e.sh: on a
// host whose KVM runs guests natively it runs this config directly, elsewhere (the
// PVM-backed KVM of this project's machines) each test file in its own nested-KVM L1
// (test/e2e/setup/run-files-in-l1.js), so a stalled L1 costs one file.
export default defineConfig({
  test: {
    include: [E2E_INCLUDE],
    globalSetup: ['test/e2e/setup/require-real-guests.ts'],
    // A failing test prints its file's background VMs (record, host log, console).
    setupFiles: ['test/e2e/setup/report-vms-on-failure.ts'],
    // Guests under nested KVM in TCG boot ~60x slower than on hardware.
    testTimeout: 10 * 60_000,
    hookTimeout: 40 * 60_000,
    pool: 'forks',
    // One file at a time: L1 has 2 vCPUs, and parallel guests would skew the
    // timings tests measure and multiply L1's memory use.
    fileParallelism: false,
  },
});
