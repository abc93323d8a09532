// @ts-check
/**
 * The nested-KVM harness's command line: its options, their defaults and limits,
 * and the usage text.
 */
import { availableParallelism } from 'node:os';
import { HarnessError } from './harness-error.js';
import { L1_ARCHES } from './l1-arch.js';

const DEFAULT_MEMORY_MIB = 4096;
const DEFAULT_CPUS = 2;
/** Generous: a whole e2e suite under TCG can take many minutes. */
const DEFAULT_TIMEOUT_S = 3600;
/** L1 reaches /dev/kvm in about 13 s here; 300 s means it is stuck, not slow. */
const DEFAULT_BOOT_TIMEOUT_S = 300;
/**
 * L1 beats every 5 s even with both vCPUs busy and the host loaded (load 15 on 2
 * cores measured); three minutes without one is a stall.
 */
const DEFAULT_STALL_TIMEOUT_S = 180;

/** The usage text. */
export function usage() {
  return `usage: test/harness/nested-kvm [options] -- COMMAND [ARG...]

Boots an L1 Linux under qemu-system-x86_64 -cpu max (TCG), whose emulated SVM
gives it a real /dev/kvm, and runs COMMAND there as you, in the current
directory, with your environment and the host's files at the same paths.
With --arch aarch64, L1 is an arm64 Linux under qemu-system-aarch64 (emulated
EL2, GICv3): COMMAND runs in L1's busybox root, where the host's data
directories (/work, /root, /tmp, ...) are at their paths; it must be a busybox
command or an arm64 program.
COMMAND's stdout/stderr stream to the harness's; its exit status is the
harness's. The harness's own failures exit 125, an expired --timeout 124, a
stalled L1 123 (after printing what explains the stall), an L1 whose own kernel
crashed while the command ran 122.

options:
  --arch ARCH          x86_64 (default) or aarch64
  --memory SIZE        L1's RAM, e.g. 4G or 6144M (default 4G)
  --cpus N             L1's vCPUs (default 2)
  --timeout S          kill QEMU after S seconds in all (default ${DEFAULT_TIMEOUT_S})
  --boot-timeout S     fail if /dev/kvm is not up after S seconds (default ${DEFAULT_BOOT_TIMEOUT_S})
  --stall-timeout S    call L1 stalled after S seconds without a heartbeat (default
                       ${DEFAULT_STALL_TIMEOUT_S}); print QEMU's threads, the vCPUs' registers,
                       L1's sysrq backtraces and console, then exit 123
                       (x86_64 only: aarch64's L1 has no serial port for the heartbeat)
  --idle-timeout S     also call L1 stalled when its CPUs were idle (under 1% busy)
                       for S seconds while the command ran (default: off)
  --private-tmp        TMPDIR is a tmpfs in L1 (scratch files stay off 9p and are
                       gone with L1) instead of the host's temp dir
  --verbose            echo L1's console (kernel log) to stderr
  -h, --help           this text

environment: VMRUN_CACHE (cache root; else $XDG_CACHE_HOME/vmrun or
~/.cache/vmrun), VMRUN_L1_KERNEL_PACKAGE (pin the Debian kernel package),
NESTED_KVM_TEST_WEDGE_AFTER_S (test hook: wedge L1 that many seconds after the
command starts). Inside L1 the command sees VMRUN_NESTED_L1=1.
`;
}

/**
 * The parsed command line.
 * @typedef {{ arch: 'x86_64' | 'aarch64', memoryMiB: number, cpus: number, timeoutS: number, bootTimeoutS: number, stallTimeoutS: number,
 *   idleTimeoutS: number, privateTmp: boolean, verbose: boolean, command: string[] }} HarnessOptions
 */

/**
 * Parses the harness's arguments; a HarnessError naming the bad one.
 * @param {string[]} argv
 * @returns {HarnessOptions | 'help'}
 */
export function parseArguments(argv) {
  /** @type {HarnessOptions} */
  const options = {
    arch: 'x86_64',
    memoryMiB: DEFAULT_MEMORY_MIB,
    cpus: DEFAULT_CPUS,
    timeoutS: DEFAULT_TIMEOUT_S,
    bootTimeoutS: DEFAULT_BOOT_TIMEOUT_S,
    stallTimeoutS: DEFAULT_STALL_TIMEOUT_S,
    idleTimeoutS: 0,
    privateTmp: false,
    verbose: false,
    command: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = /** @type {string} */ (argv[i]);
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw usageError(`${arg} needs a value`);
      return v;
    };
    if (arg === '--') {
      options.command = argv.slice(i + 1);
      break;
    } else if (arg === '-h' || arg === '--help') return 'help';
    else if (arg === '--verbose') options.verbose = true;
    else if (arg === '--private-tmp') options.privateTmp = true;
    else if (arg === '--arch') options.arch = parseArch(value());
    else if (arg === '--memory') options.memoryMiB = parseMemory(value());
    else if (arg === '--cpus') options.cpus = parsePositiveInteger('--cpus', value(), availableParallelism() * 4);
    else if (arg === '--timeout') options.timeoutS = parsePositiveInteger('--timeout', value(), 7 * 24 * 3600);
    else if (arg === '--stall-timeout') options.stallTimeoutS = parsePositiveInteger('--stall-timeout', value(), 24 * 3600);
    else if (arg === '--idle-timeout') options.idleTimeoutS = parsePositiveInteger('--idle-timeout', value(), 24 * 3600);
    else if (arg === '--boot-timeout') options.bootTimeoutS = parsePositiveInteger('--boot-timeout', value(), 24 * 3600);
    else throw usageError(`unknown option ${JSON.stringify(arg)} (the command goes after --)`);
  }
  if (options.command.length === 0) throw usageError('no command: give it after --');
  return options;
}

/** @param {string} message */
function usageError(message) {
  return new HarnessError(`${message}\n${usage()}`);
}

/** @param {string} text @returns {'x86_64' | 'aarch64'} */
function parseArch(text) {
  const arch = L1_ARCHES.find((a) => a === text);
  if (!arch) throw usageError(`--arch ${JSON.stringify(text)}: expected one of ${L1_ARCHES.join(', ')}`);
  return arch;
}

/** @param {string} text */
function parseMemory(text) {
  const m = /^(\d+)([MG]?)$/i.exec(text);
  const mib = m ? Number(m[1]) * (m[2]?.toUpperCase() === 'G' ? 1024 : 1) : NaN;
  if (!(mib >= 512 && mib <= 1024 * 1024)) {
    throw usageError(`--memory ${JSON.stringify(text)}: expected a size from 512M to 1024G, like 4G or 6144M`);
  }
  return mib;
}

/** @param {string} flag @param {string} text @param {number} max */
function parsePositiveInteger(flag, text, max) {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= max)) throw usageError(`${flag} ${JSON.stringify(text)}: expected a whole number from 1 to ${max}`);
  return n;
}

