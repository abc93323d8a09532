import { isVmrunError } from '../errors.js';

/** One line for the user: our own errors as they are, flag-parsing errors as usage. */
export function describeFailure(err: Error): string {
  if (isVmrunError(err)) return err.message;
  // oclif's parser errors (unknown flag, missing arg) are usage errors.
  if (err.name?.includes('Error') && /flag|argument|Expected/i.test(err.message)) {
    return firstLine(err.message);
  }
  return `internal error: ${firstLine(err.message)} (set VMRUN_DEBUG=1 for the stack)`;
}

function firstLine(s: string): string {
  return s.split('\n').find((l) => l.trim().length > 0)?.trim() ?? s;
}

