// Boots a guest with vsock in this (new) process through the built library, so a test
// can read what the VMM itself writes to stderr:
//   node boot-in-child.mjs KERNEL CMDLINE SOCKET_PATH
// The guest's console goes to stdout; exits 0 when the guest ends with a reset.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [kernel, cmdline, socketPath] = process.argv.slice(2);
const { Machine } = await import(join(fileURLToPath(new URL('../..', import.meta.url)), 'dist', 'index.js'));
const m = Machine.boot({ kernel, cmdline, memory: '32M', vsock: { cid: 3, socketPath } });
m.output.pipe(process.stdout);
const exit = await m.wait();
process.exitCode = exit.reason === 'reset' ? 0 : 1;
