/**
 * Runs a command on a pseudo-terminal from a test: util-linux `script` allocates the
 * pty, relays the test's pipe to it and the pty's output back, and exits with the
 * command's status (-e). The pty is given a fixed size first: with a pipe as its own
 * stdin, `script` would leave it at 0x0.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shellQuote } from '../../harness/job-dir.js';
import { eventually } from '../../vmhost/vm-env.js';

/** Rows and columns of the test terminal. */
export const PTY_SIZE = { rows: 24, cols: 80 };

/** argv that runs `argv` on a fresh pty of PTY_SIZE. */
export function underPty(argv: string[]): string[] {
  const inner = `stty rows ${PTY_SIZE.rows} cols ${PTY_SIZE.cols} && exec ${argv.map(shellQuote).join(' ')}`;
  return ['script', '-qefc', inner, '/dev/null'];
}

/**
 * Runs `vmrunArgv` (a `vmrun ... -it ... sh -c 'stty size; while read x; do stty size;
 * [ "$x" = q ] && exit 0; done'`-style command) on a pty, waits for the guest to print
 * the pty's first size, then resizes the pty to 50x132 (vmrun sees SIGWINCH) and
 * sends lines until the guest prints the new size; then `q`. Resolves with the exit
 * status. The resize runs from a helper that waits for a flag file in `scratchDir`:
 * under emulation when it runs is not known exactly.
 */
export async function resizeSeenByGuest(
  env: { start(args: string[], opts: { command: string[] }): { stdout: string; child: { stdin: NodeJS.WritableStream | null }; waitExit(ms: number): Promise<number | null> } },
  vmrunArgv: string[],
  scratchDir: string,
  timeoutMs: number,
): Promise<number | null> {
  const flag = join(scratchDir, `resize-now-${process.pid}-${Date.now()}`);
  // An asynchronous list's stdin is /dev/null in sh: the resize names the terminal.
  const resizer = `(while [ ! -e ${flag} ]; do sleep 0.2; done; stty rows 50 cols 132 </dev/tty) &`;
  const live = env.start([], { command: underPty(['sh', '-c', `${resizer} exec "$@"`, 'sh', ...vmrunArgv]) });
  await eventually(async () => (live.stdout.includes(`${PTY_SIZE.rows} ${PTY_SIZE.cols}`) ? true : undefined), 'the first size from the guest', timeoutMs);
  writeFileSync(flag, '');
  await eventually(
    async () => {
      if (live.stdout.includes('50 132')) return true;
      live.child.stdin!.write('\r');
      await new Promise((r) => setTimeout(r, 3000));
      return undefined;
    },
    '50 132 after the resize',
    120_000,
  );
  live.child.stdin!.write('q\r');
  return live.waitExit(60_000);
}

/** The guest side of resizeSeenByGuest: prints the terminal size after every line, `q` ends. */
export const PRINT_SIZE_PER_LINE = 'stty size; while read x; do stty size; [ "$x" = q ] && exit 0; done';
