/**
 * What the arm64 real-guest tests share: the guest's files and what it runs on
 * (guest-files.js, which the arm64 bench imports too), a run of a script in one
 * aarch64 L1, and the image `vmrun run` tests run.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeBusyboxLayout, type PasswdEntry } from '../e2e/helpers/busybox-image.js';
import { HARNESS, runHarness, type HarnessRun } from '../harness/run-harness.js';
import { REPO, type Arm64Guest } from './guest-files.js';

const run = promisify(execFile);

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

/**
 * What `vmrun run` needs on arm64 beside the addon: vmrun's arm64 guest kernel and
 * init, which vmrun finds on its own (the kernel cache's latest-aarch64,
 * guest/init/out/aarch64; built first if missing: ~9 min of 2 cores for the kernel),
 * and an arm64 busybox image in an OCI layout under `guest.scratch` with `users`.
 * Returns the image reference.
 */
export async function prepareArm64RunImage(guest: Arm64Guest, users: PasswdEntry[] = []): Promise<string> {
  await run(join(REPO, 'guest/kernel/build.sh'), ['--arch', 'aarch64'], { maxBuffer: 1 << 24 });
  await run('make', ['-s', '-C', join(REPO, 'guest/init'), 'aarch64']);
  const layout = join(guest.scratch, 'layout');
  await writeBusyboxLayout(layout, 'v1', { busybox: join(guest.scratch, 'root/bin/busybox'), config: { architecture: 'arm64' }, users });
  return `oci:${layout}:v1`;
}
