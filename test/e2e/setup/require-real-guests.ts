/**
 * Global setup of the e2e suite: refuses to start on a host whose KVM cannot run
 * real guests (it would fail every test for the wrong reason) and says how to run
 * the suite instead; otherwise reports where the suite runs.
 */
import { IN_L1_VARIABLE } from '../../harness/job-dir.js';
import { nativeGuests } from '../../harness/native-guests.js';

/** Vitest global setup hook: throws unless guests can run here. */
export default function requireRealGuests(): void {
  if (process.env[IN_L1_VARIABLE] === '1') {
    console.log('e2e: running inside the nested-KVM harness (L1 with KVM on emulated SVM)');
    return;
  }
  const verdict = nativeGuests();
  if (!verdict.nativeGuests) {
    throw new Error(
      `e2e tests need a KVM that runs real guests, and this host's does not (${verdict.reason}); ` +
        'run them with scripts/e2e.sh, which uses test/harness/nested-kvm',
    );
  }
  console.log(`e2e: running on the host (${verdict.reason})`);
}
