// @ts-check
/**
 * What differs between the harness's two kinds of L1: x86_64 (q35, emulated AMD SVM,
 * the command chroot-ed into the host's /) and aarch64 (virt with emulated EL2 and
 * GICv3, the command run in L1's own busybox root with the host's data directories
 * bound at their usual paths, since the host's programs are x86 binaries). Measured
 * facts behind the aarch64 choices: notes/arm64-harness.md.
 */
import { requireCommand } from './host-tools.js';
import { ensureX86Qemu } from './x86-qemu.js';

/**
 * One L1 architecture.
 * @typedef {{
 *   name: 'x86_64' | 'aarch64',
 *   qemu: (log: (line: string) => void) => L1Qemu,
 *   dpkgArch: string,
 *   kernelMetaPackage: string,
 *   rootModules: string[],
 *   busyboxFromHost: boolean,
 *   pvhKernel: boolean,
 *   consoleDevice: string,
 *   kernelArguments: string[],
 *   machineArguments: string[],
 *   virtfsDevice: string,
 *   hasHeartbeatPort: boolean,
 *   chrootIntoHost: boolean,
 *   arm64Userland: boolean,
 * }} L1Arch
 */

/**
 * The emulator that runs an L1: its path, the options it needs before the machine's
 * (where its firmware is), and what it is, for the harness's log.
 * @typedef {{ command: string, arguments: string[], description: string }} L1Qemu
 */

/** @type {L1Arch} */
const X86_64 = {
  name: 'x86_64',
  qemu: (log) => {
    // Staged from bookworm-backports: bookworm's 7.2 leaves stale code after a patch (x86-qemu.js).
    const staged = ensureX86Qemu(log);
    return { command: staged.qemu, arguments: staged.dataArguments, description: staged.description };
  },
  dpkgArch: 'amd64',
  kernelMetaPackage: 'linux-image-amd64',
  /** KVM on (emulated) AMD SVM, and 9p over virtio-pci for the host's /. */
  rootModules: ['kvm_amd', 'virtio_pci', '9pnet_virtio', '9p'],
  busyboxFromHost: true,
  pvhKernel: true,
  consoleDevice: 'ttyS0',
  kernelArguments: [
    'tsc=reliable', // TCG's TSC follows the host clock; skip the watchdog that distrusts it
    // The boot-time check that the timer interrupt arrives within a calibrated delay
    // loop fails when the host is loaded (seen at load 22 on 2 cores: "Kernel panic -
    // not syncing: IO-APIC + timer doesn't work!"); under QEMU the timer is known good.
    'no_timer_check',
  ],
  machineArguments: [
    '-machine', 'q35',
    '-cpu', 'max', // includes SVM with nested paging, which kvm_amd needs
  ],
  virtfsDevice: 'virtio-9p-pci',
  hasHeartbeatPort: true,
  chrootIntoHost: true,
  arm64Userland: false,
};

/** @type {L1Arch} */
const AARCH64 = {
  name: 'aarch64',
  qemu: () => ({ command: requireCommand('qemu-system-aarch64'), arguments: [], description: `the host's qemu-system-aarch64` }),
  dpkgArch: 'arm64',
  kernelMetaPackage: 'linux-image-arm64',
  /** KVM, GICv3 and the PL011 are built in; 9p over virtio-mmio is modules. */
  rootModules: ['virtio_mmio', '9pnet_virtio', '9p'],
  busyboxFromHost: false,
  pvhKernel: false, // Debian's arm64 vmlinuz is already an uncompressed Image
  consoleDevice: 'ttyAMA0',
  kernelArguments: [],
  machineArguments: [
    // virtualization=on: TCG emulates EL2, so L1's KVM is real; gic-version=3: the
    // in-kernel vGICv3 that L2 gets needs a GICv3 in L1.
    '-machine', 'virt,virtualization=on,gic-version=3',
    // pauth-impdef: QEMU's default pointer-authentication algorithm costs 3.6x in L1's
    // boot (19.8 s instead of 5.5 s to /dev/kvm).
    '-cpu', 'max,pauth-impdef=on',
  ],
  virtfsDevice: 'virtio-9p-device',
  // The virt machine has one UART (QEMU 7.2): no second port for the heartbeat.
  hasHeartbeatPort: false,
  chrootIntoHost: false,
  // L1's own root has busybox only: Node and vmrun's addon run there with Debian's
  // arm64 glibc and libraries, linked in by run.sh (arm64-userland.js).
  arm64Userland: true,
};

/** The architectures `--arch` accepts. */
export const L1_ARCHES = /** @type {const} */ (['x86_64', 'aarch64']);

/**
 * The L1 profile for `name`.
 * @param {'x86_64' | 'aarch64'} name
 * @returns {L1Arch}
 */
export function l1Arch(name) {
  return name === 'aarch64' ? AARCH64 : X86_64;
}
