/**
 * Runs a command on a pseudo-terminal from a test: util-linux `script` allocates the
 * pty, relays the test's pipe to it and the pty's output back, and exits with the
 * command's status (-e). The pty is given a fixed size first: with a pipe as its own
 * stdin, `script` would leave it at 0x0.
 */
import { shellQuote } from '../../harness/job-dir.js';

/** Rows and columns of the test terminal. */
export const PTY_SIZE = { rows: 24, cols: 80 };

/** argv that runs `argv` on a fresh pty of PTY_SIZE. */
export function underPty(argv: string[]): string[] {
  const inner = `stty rows ${PTY_SIZE.rows} cols ${PTY_SIZE.cols} && exec ${argv.map(shellQuote).join(' ')}`;
  return ['script', '-qefc', inner, '/dev/null'];
}
