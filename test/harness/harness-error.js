// @ts-check
/**
 * Failures of the nested-KVM harness itself (as opposed to the command's own exit
 * status, which passes through): one line for the user, plus optional detail lines
 * (an L1 console tail, QEMU's stderr) and the exit code the harness ends with.
 */

/** Exit code for the harness's own failures; the same as vmrun's (src/errors.ts). */
export const HARNESS_FAILURE_EXIT_CODE = 125;

/** Exit code when --timeout expired and QEMU was killed (as GNU timeout uses). */
export const HARNESS_TIMEOUT_EXIT_CODE = 124;

/**
 * Exit code when the watchdog found L1 stalled (no heartbeat, or idle all along, for
 * --stall-timeout seconds): the report is printed and QEMU killed. A caller may
 * retry a stalled run; a command's own failure never has this code from the harness.
 */
export const HARNESS_STALL_EXIT_CODE = 123;

/**
 * Exit code when L1 ended without the command's exit status after its own kernel
 * crashed (a panic, oops or BUG on its console): the emulated machine failed, not the
 * command. A caller may retry it as it retries a stall.
 */
export const HARNESS_L1_CRASH_EXIT_CODE = 122;

/** A failure of the harness: a one-line message, detail to print under it, an exit code. */
export class HarnessError extends Error {
  /**
   * @param {string} message one line naming what failed and what to do about it
   * @param {{ detail?: string, exitCode?: number, cause?: unknown }} [options]
   */
  constructor(message, options = {}) {
    super(message, { cause: options.cause });
    this.name = 'HarnessError';
    /** Lines printed under the message (console tail, tool output), or ''. */
    this.detail = options.detail ?? '';
    /** The harness's exit status for this failure. */
    this.exitCode = options.exitCode ?? HARNESS_FAILURE_EXIT_CODE;
  }
}
