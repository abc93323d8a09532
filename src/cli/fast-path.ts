/**
 * Start-up fast path: the commands whose latency is the product (`run`, restoring a
 * snapshot) run without loading oclif, which alone costs several times Node's own start-up.
 * Everything else, and any use of --help, goes through oclif.
 */
import { VMRUN_FAILURE_EXIT_CODE } from '../errors.js';
import { describeFailure } from './failure.js';
import { parseFast } from './flag-spec.js';

/** Returns an exit status if it handled the command, undefined to fall back to oclif. */
export async function tryFastPath(argv: string[]): Promise<number | undefined> {
  if (argv[0] === 'run') return tryFastRun(argv.slice(1));
  if (argv[0] !== 'snapshot' || argv[1] !== 'restore') return undefined;
  if (argv.some((a) => a === '--help' || a === '-h')) return undefined;
  try {
    const { RESTORE_FLAGS, restoreAction } = await import('./restore-action.js');
    const { positionals, flags } = parseFast(RESTORE_FLAGS, argv.slice(2));
    if (positionals.length !== 1) return undefined; // let oclif explain the usage
    return await restoreAction(
      { snapshot: positionals[0]!, detach: flags.detach === true, name: flags.name as string | undefined, interactive: flags.interactive === true, kvmDevice: flags['kvm-device'] as string, catchUpClock: flags['catch-up-clock'] === true, publish: flags.publish as string[] | undefined },
      (l) => process.stdout.write(`${l}\n`),
    );
  } catch (e) {
    process.stderr.write(`vmrun: ${describeFailure(e as Error)}\n`);
    return VMRUN_FAILURE_EXIT_CODE;
  }
}

/** `vmrun run`: options before IMAGE are vmrun's (a --help there goes to oclif); what follows is the command's. */
async function tryFastRun(argv: string[]): Promise<number | undefined> {
  try {
    const [{ RUN_FLAGS, runAction }, { splitRunArgv, splitSpecOf }] = await Promise.all([import('./run-action.js'), import('./split-run-argv.js')]);
    const split = splitRunArgv(argv, splitSpecOf(RUN_FLAGS));
    if (!split.image || split.vmrunArgs.some((a) => a === '--help' || a === '-h')) return undefined;
    const { positionals, flags } = parseFast(RUN_FLAGS, split.vmrunArgs);
    if (positionals.length !== 0) return undefined;
    return await runAction(split.image, split.command, flags, (l) => process.stdout.write(`${l}\n`));
  } catch (e) {
    process.stderr.write(`vmrun: ${describeFailure(e as Error)}\n`);
    return VMRUN_FAILURE_EXIT_CODE;
  }
}
