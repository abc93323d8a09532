// Restores a vsock snapshot in this (new) process through the built library:
//   node restore-in-child.mjs SNAPSHOT SOCKET_PATH
// The guest's console goes to stdout; exits 0 when the guest ends with a reset.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [snapshot, socketPath] = process.argv.slice(2);
const { Machine } = await import(join(fileURLToPath(new URL('../..', import.meta.url)), 'dist', 'index.js'));
const m = await Machine.restore(snapshot, { vsock: { socketPath } });
m.output.pipe(process.stdout);
const exit = await m.wait();
process.exitCode = exit.reason === 'reset' ? 0 : 1;
