/**
 * Which Linux kernel `vmrun run` boots: --kernel, then VMRUN_KERNEL, then the one
 * guest/kernel/build.sh (scripts/setup.sh) built into the cache.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { vmrunCacheDir } from '../host/cache-dir.js';
import { VmrunError } from '../errors.js';

/** The kernel to boot, or a one-line error saying how to get one. */
export function findGuestKernel(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = explicit ?? env.VMRUN_KERNEL;
  if (chosen) {
    if (!existsSync(chosen)) throw new VmrunError('not-found', `kernel ${chosen} does not exist`);
    return chosen;
  }
  // The uncompressed vmlinux boots faster than the bzImage: no decompression in the guest.
  const built = join(vmrunCacheDir(env), 'kernel', 'latest', 'vmlinux');
  if (existsSync(built)) return built;
  throw new VmrunError('not-found', 'no guest kernel yet: run scripts/setup.sh (builds it, ~9 min once), or pass --kernel / set VMRUN_KERNEL');
}

/** The guest init binary that goes into every image's initramfs. */
export function findGuestInit(root: string, env: NodeJS.ProcessEnv = process.env): string {
  const path = env.VMRUN_INIT ?? join(root, 'guest', 'init', 'out', 'vmrun-init');
  if (!existsSync(path)) throw new VmrunError('not-found', `guest init ${path} is missing: run npm run build:guests`);
  return path;
}
