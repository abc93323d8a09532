/**
 * Which Linux kernel and guest init `vmrun run` boots: --kernel, then VMRUN_KERNEL,
 * then the one guest/kernel/build.sh (scripts/setup.sh) built into the cache, for the
 * architecture KVM runs here (the host's own).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { vmrunCacheDir } from '../host/cache-dir.js';
import { VmrunError } from '../errors.js';
import { ELF_MACHINE_BY_NODE_ARCH, elfMachine } from '../native/elf-machine.js';

/** A guest architecture, named as guest/kernel/build.sh --arch and `uname -m` name it. */
export type GuestArch = 'x86_64' | 'aarch64';

/**
 * What a guest of each architecture boots: the build's image file, the Node
 * architecture of a host of it, and the kernel arguments only that architecture's
 * machine needs.
 */
const GUEST_ARCHES: Record<GuestArch, { kernelFile: string; nodeArch: string; kernelArgs: string[] }> = {
  x86_64: {
    // The uncompressed vmlinux boots faster than the bzImage: no decompression in the guest.
    kernelFile: 'vmlinux',
    nodeArch: 'x64',
    // Reset through the i8042 (no ACPI); skip its aux port probe and the TSC and
    // timer checks that cost boot time under KVM.
    kernelArgs: ['reboot=k', 'i8042.noaux', 'tsc=reliable', 'no_timer_check'],
  },
  // arm64 boots the Image (the arm64 boot protocol's format; its vmlinux is not
  // loadable); reset and power-off are PSCI calls, which need no arguments.
  aarch64: { kernelFile: 'Image', nodeArch: 'arm64', kernelArgs: [] },
};

/** The kernel arguments `arch`'s machine needs on every Linux boot. */
export function archKernelArgs(arch: GuestArch): readonly string[] {
  return GUEST_ARCHES[arch].kernelArgs;
}

/** The guest architecture KVM runs on this host, or a one-line error for any other host. */
export function hostGuestArch(nodeArch: string = process.arch): GuestArch {
  for (const [arch, facts] of Object.entries(GUEST_ARCHES)) if (facts.nodeArch === nodeArch) return arch as GuestArch;
  throw new VmrunError('host', `vmrun runs guests on x86_64 and arm64 hosts; this host is ${nodeArch}`);
}

/** The kernel to boot, or a one-line error saying how to get one. */
export function findGuestKernel(explicit?: string, env: NodeJS.ProcessEnv = process.env, arch: GuestArch = hostGuestArch()): string {
  const chosen = explicit ?? env.VMRUN_KERNEL;
  if (chosen) {
    if (!existsSync(chosen)) throw new VmrunError('not-found', `kernel ${chosen} does not exist`);
    return chosen;
  }
  const built = join(vmrunCacheDir(env), 'kernel', `latest-${arch}`, GUEST_ARCHES[arch].kernelFile);
  if (existsSync(built)) return built;
  const how = arch === 'x86_64' ? 'scripts/setup.sh (builds it, ~9 min once)' : `guest/kernel/build.sh --arch ${arch} (~9 min once)`;
  throw new VmrunError('not-found', `no ${arch} guest kernel yet: run ${how}, or pass --kernel / set VMRUN_KERNEL`);
}

/**
 * The guest init binary that goes into every image's initramfs, built for `arch`:
 * guest/init/out/<arch>/vmrun-init (a cross build), else guest/init/out/vmrun-init
 * if that is one (the host's own build). A checkout shared by an x86_64 host and an
 * arm64 machine (the aarch64 harness) holds both.
 */
export function findGuestInit(root: string, env: NodeJS.ProcessEnv = process.env, arch: GuestArch = hostGuestArch()): string {
  if (env.VMRUN_INIT) {
    if (!existsSync(env.VMRUN_INIT)) throw new VmrunError('not-found', `guest init ${env.VMRUN_INIT} (VMRUN_INIT) does not exist`);
    return env.VMRUN_INIT;
  }
  const out = join(root, 'guest', 'init', 'out');
  for (const path of [join(out, arch, 'vmrun-init'), join(out, 'vmrun-init')])
    if (existsSync(path) && elfMachine(path) === ELF_MACHINE_BY_NODE_ARCH[GUEST_ARCHES[arch].nodeArch]) return path;
  const how = arch === 'x86_64' ? 'npm run build:guests' : `make -C guest/init ${arch}`;
  throw new VmrunError('not-found', `no ${arch} guest init in ${out}: run ${how}`);
}
