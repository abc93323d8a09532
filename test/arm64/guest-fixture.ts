/**
 * What the arm64 real-guest tests share: the guest's files and what it runs on
 * (guest-files.js, which the arm64 bench imports too), and a run of a script in one
 * aarch64 L1.
 */
import { join } from 'node:path';
import { HARNESS, runHarness, type HarnessRun } from '../harness/run-harness.js';
import { REPO } from './guest-files.js';

export { prepareArm64Guest, REPO } from './guest-files.js';
export const DRIVER = join(REPO, 'build/arm64/vmrun-arm64-boot');

/**
 * Runs `script` (sh) in one aarch64 L1, bounded by `timeoutS`, with vmrun's state,
 * image store and snapshots in L1's tmpfs (VMRUN_HOME=/dev/shm/vmrun-home: nothing of
 * it crosses 9p). Returns the run, its stdout without the console's CRs as `out`.
 */
export async function runVmrunInArm64L1(script: string, timeoutS: number): Promise<HarnessRun & { out: string }> {
  const env = { ...process.env, VMRUN_HOME: '/dev/shm/vmrun-home' };
  const result = await runHarness(HARNESS, ['--arch', 'aarch64', '--timeout', String(timeoutS), '--', 'sh', '-c', script], {
    env,
    timeoutMs: (timeoutS + 60) * 1000,
  });
  return { ...result, out: result.stdout.replace(/\r/g, '') };
}
