// Boots or restores a vsock guest in this (new) process through the built library, so
// a test gets a machine in a fresh process and can read what the VMM writes to stderr:
//   node machine-in-child.mjs boot KERNEL CMDLINE SOCKET_PATH
//   node machine-in-child.mjs restore SNAPSHOT SOCKET_PATH
// The guest's console goes to stdout; exits 0 when the guest ends with a reset.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [mode, ...args] = process.argv.slice(2);
const { Machine } = await import(join(fileURLToPath(new URL('../..', import.meta.url)), 'dist', 'index.js'));
let m;
if (mode === 'boot') {
  const [kernel, cmdline, socketPath] = args;
  m = Machine.boot({ kernel, cmdline, memory: '32M', vsock: { cid: 3, socketPath } });
} else if (mode === 'restore') {
  const [snapshot, socketPath] = args;
  m = await Machine.restore(snapshot, { vsock: { socketPath } });
} else {
  console.error(`machine-in-child: expected boot or restore, not ${JSON.stringify(mode)}`);
  process.exit(125);
}
m.output.pipe(process.stdout);
const exit = await m.wait();
process.exitCode = exit.reason === 'reset' ? 0 : 1;
