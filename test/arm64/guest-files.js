// @ts-check
/**
 * The arm64 real guest's files, shared by the arm64 tests (through guest-fixture.ts)
 * and the arm64 bench (bench/arm64.e2e.js, plain JS): Debian's arm64 kernel (the one
 * the aarch64 harness boots as L1) and a busybox initramfs whose /init is l2-init.sh
 * (with that kernel's virtio_mmio module), in a scratch directory of the host's temp
 * dir (which the aarch64 L1 sees at the same path), and what the guest runs on: the
 * cross-built test driver or addon.
 */
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { l1Arch } from '../harness/l1-arch.js';
import { ensureL1Image } from '../harness/l1-image.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
const INIT = fileURLToPath(new URL('./l2-init.sh', import.meta.url));

const run = promisify(execFile);

/**
 * The guest's scratch directory (remove it when done), kernel and initramfs.
 * @typedef {{ scratch: string, kernel: string, initramfs: string }} Arm64Guest
 */

/**
 * Builds what the guest runs on (asynchronously: a cross-build takes a minute or more,
 * and vitest's worker must stay responsive) and the guest's initramfs: `driver`, the
 * test driver (skipped while nothing under native/ changed); `addon`, the arm64
 * addon that `vmrun` loads in L1 (scripts/build-arm64-addon.sh, incremental).
 * @param {{ driver?: boolean, addon?: boolean }} [build]
 * @returns {Promise<Arm64Guest>}
 */
export async function prepareArm64Guest(build = { driver: true }) {
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
