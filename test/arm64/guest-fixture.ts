/**
 * What the arm64 real-guest tests share: the cross-built driver (vmrun-arm64-boot,
 * test/arm64/boot_driver.cc) or addon, Debian's arm64 kernel (the one the aarch64
 * harness boots as L1) and a busybox initramfs whose /init is l2-init.sh (with that
 * kernel's virtio_mmio module), in a scratch directory of the host's temp dir (which
 * the aarch64 L1 sees at the same path).
 */
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { l1Arch } from '../harness/l1-arch.js';
import { ensureL1Image } from '../harness/l1-image.js';
import { HARNESS, runHarness, type HarnessRun } from '../harness/run-harness.js';
import { writeBusyboxLayout, type PasswdEntry } from '../e2e/helpers/busybox-image.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const DRIVER = join(REPO, 'build/arm64/vmrun-arm64-boot');
const INIT = fileURLToPath(new URL('./l2-init.sh', import.meta.url));

const run = promisify(execFile);

export interface Arm64Guest {
  scratch: string;
  kernel: string;
  initramfs: string;
}

/**
 * Builds what the guest runs on (asynchronously: a cross-build takes a minute or more,
 * and vitest's worker must stay responsive) and the guest's initramfs: `driver`, the
 * test driver (skipped while nothing under native/ changed); `addon`, the arm64
 * addon that `vmrun` loads in L1 (scripts/build-arm64-addon.sh, incremental).
 */
export async function prepareArm64Guest(build: { driver?: boolean; addon?: boolean } = { driver: true }): Promise<Arm64Guest> {
  const image = ensureL1Image(() => {}, l1Arch('aarch64'));
  if (build.driver) await run('sh', [join(REPO, 'scripts/build-arm64-driver.sh')]);
  if (build.addon) await run('sh', [join(REPO, 'scripts/build-arm64-addon.sh')], { maxBuffer: 16 << 20 });
  const scratch = mkdtempSync(join(tmpdir(), 'vmrun-arm64-test-'));
  const root = join(scratch, 'root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  copyFileSync(image.busybox, join(root, 'bin/busybox'));
  copyFileSync(INIT, join(root, 'init'));
  chmodSync(join(root, 'init'), 0o755);
  // virtio-mmio's driver, a module of the same kernel, from L1's own initramfs (l2-init.sh loads it on request).
  await run('sh', ['-c', `cpio -i -d --quiet lib/modules/virtio_mmio.ko < '${image.initramfs}'`], { cwd: root });
  const initramfs = join(scratch, 'initramfs.cpio');
  // A newc cpio, files owned by root (the kernel unpacks it as the initramfs).
  const files = ['bin', 'bin/busybox', 'init', 'lib', 'lib/modules', 'lib/modules/virtio_mmio.ko'].join('\\n');
  await run('sh', ['-c', `printf '${files}\\n' | cpio -o -H newc -R 0:0 --quiet > '${initramfs}'`], { cwd: root });
  return { scratch, kernel: image.kernel, initramfs };
}

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
