// Loaded by every e2e file (vitest.e2e.config.ts setupFiles): when a test fails,
// prints what its file's background VMs were doing (test/e2e/helpers/vm-report.ts)
// before the file's cleanup removes the files that say it.
import { beforeEach } from 'vitest';
import { reportVms } from '../helpers/vm-report.js';

beforeEach(({ task, onTestFailed }) => {
  onTestFailed(() => {
    let report: string;
    try {
      report = reportVms();
    } catch (e) {
      report = `(the VMs could not be read: ${(e as Error).message})`;
    }
    if (report) console.log(`e2e: the background VMs when "${task.name}" failed:\n${report}`);
  });
});
