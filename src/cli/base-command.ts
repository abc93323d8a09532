import { Command, Errors } from '@oclif/core';
import { VMRUN_FAILURE_EXIT_CODE, VmrunError } from '../errors.js';
import { describeFailure } from './failure.js';

/**
 * Base of every vmrun command: turns any failure into one line on stderr and exit
 * code 125, the way docker reports its own failures. Commands stay thin: parse flags,
 * call the library, render the result.
 */
export abstract class VmrunCommand extends Command {
  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    // oclif's own exit (this.exit(n)) passes through untouched.
    if (err instanceof Errors.ExitError) throw err;
    const message = describeFailure(err);
    process.stderr.write(`vmrun: ${message}\n`);
    if (process.env.VMRUN_DEBUG && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = VMRUN_FAILURE_EXIT_CODE;
    return this.exit(VMRUN_FAILURE_EXIT_CODE);
  }
}

export { VmrunError };
