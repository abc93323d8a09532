/**
 * Entry point of a VM's background host process, spawned (detached, in its own
 * session) by `startDetached`: `node host-main.js RUNTIME_DIR VM_ID`. File
 * descriptor 3, when open, is the pipe on which it reports whether the machine
 * started. Not a command: users never run it.
 */
import { closeSync, writeSync } from 'node:fs';
import { VmRegistry } from './registry.js';
import { runHost, type StartOutcome } from './host-process.js';
import { startMachine } from './host-spec.js';

const START_REPORT_FD = 3;

function reportStart(outcome: StartOutcome): void {
  try {
    writeSync(START_REPORT_FD, `${JSON.stringify(outcome)}\n`);
    closeSync(START_REPORT_FD);
  } catch {
    // Started by hand, or the starting command is gone: there is no one to tell.
  }
}

const [root, id] = process.argv.slice(2);
if (!root || !id) {
  process.stderr.write('usage: host-main.js RUNTIME_DIR VM_ID (started by vmrun, not by hand)\n');
  process.exit(2);
}
// Sockets and logs are this user's alone.
process.umask(0o077);
// The session leader has no terminal, but a hangup from the old one must not end the VM.
process.on('SIGHUP', () => {});
process.on('uncaughtException', (e) => {
  process.stderr.write(`vmrun host ${id}: ${e.stack ?? e}\n`);
  process.exit(125);
});

const status = await runHost({
  registry: VmRegistry.at(root),
  id,
  startMachine,
  snapshot: (machine, path, opts) => machine.snapshot(path, opts),
  reportStart,
});
process.exit(status);
