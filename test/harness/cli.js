// @ts-check
/**
 * nested-kvm: runs a command inside an L1 Linux booted under QEMU's TCG, whose
 * emulated AMD SVM gives it a real /dev/kvm, with the host's files at the same paths.
 * The exit status is the command's own; the harness's failures exit 125 (124 for
 * an expired --timeout).
 */
import { HarnessError } from './harness-error.js';
import { parseArguments, usage } from './harness-options.js';
import { log, runInL1 } from './run-in-l1.js';

/** The harness's entry point: parse, run, and exit with the command's status. */
async function main(argv = process.argv.slice(2)) {
  try {
    const options = parseArguments(argv);
    if (options === 'help') {
      process.stdout.write(usage());
      return 0;
    }
    return await runInL1(options);
  } catch (e) {
    if (!(e instanceof HarnessError)) throw e;
    log(e.message);
    if (e.detail) process.stderr.write(`${e.detail}\n`);
    return e.exitCode;
  }
}

// A reader that went away (`nested-kvm ... | head`) must not crash the harness
// before it has stopped QEMU and removed its job directory.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (/** @type {NodeJS.ErrnoException} */ e) => {
    if (e.code !== 'EPIPE') throw e;
  });
}
process.exitCode = await main();
