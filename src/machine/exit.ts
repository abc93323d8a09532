import type { NativeStop } from '../native/addon.js';
import { VMRUN_FAILURE_EXIT_CODE } from '../errors.js';
import { describeRejectedInstruction } from './instructions.js';

/** How a machine ended, as the library reports it. */
export interface MachineExit {
  /** What ended it: the guest (reset, poweroff, exit-code), a fault, or the host. */
  reason: NativeStop['reason'];
  /** The process exit status vmrun uses for this ending (the guest's own code when it gave one). */
  exitCode: number;
  /** One line for a person, empty for a normal guest-initiated end. */
  message: string;
  /** Guest instruction pointer at a fault. */
  rip?: bigint;
  /** Bytes of the instruction the hypervisor could not run. */
  instruction?: Buffer;
}

/** Exit status of a guest that reported one or ended normally. */
const NORMAL = new Set<NativeStop['reason']>(['reset', 'poweroff', 'exit-code']);

/**
 * Maps the native stop onto vmrun's exit status and message. `shutdownIsNormal` is
 * true for Hermit guests, where a CPU shutdown is how some kernels end (uhyve counts
 * it as 0); for Linux it is a crash.
 */
export function describeExit(stop: NativeStop, opts: { shutdownIsNormal?: boolean; killedExitCode?: number } = {}): MachineExit {
  const base = { reason: stop.reason, rip: stop.rip, instruction: stop.instruction };
  if (NORMAL.has(stop.reason)) {
    return { ...base, exitCode: stop.reason === 'exit-code' ? stop.exitCode : 0, message: '' };
  }
  if (stop.reason === 'triple-fault' && opts.shutdownIsNormal) return { ...base, exitCode: 0, message: '' };
  // A kill from inside the addon that names its own status (gdb's kill: 137), else the one the host chose.
  if (stop.reason === 'killed') return { ...base, exitCode: stop.exitCode || (opts.killedExitCode ?? 137), message: stop.detail };
  if (stop.reason === 'emulation-failure') {
    const what = describeRejectedInstruction(stop.instruction);
    return {
      ...base,
      exitCode: VMRUN_FAILURE_EXIT_CODE,
      message:
        `guest stopped: ${stop.detail}${what ? ` [${what}]` : ''}. ` +
        `This host's KVM emulates guest instructions instead of running them, and rejects some ` +
        `(SSE, XGETBV, XRSTOR...): real guests need a host with hardware virtualization (vmx/svm), ` +
        `such as the nested harness test/harness/nested-kvm; see vmrun doctor`,
    };
  }
  return { ...base, exitCode: VMRUN_FAILURE_EXIT_CODE, message: `guest stopped: ${stop.detail}` };
}
