/**
 * Connects a guest process to this process's terminal the way docker exec does:
 * stdout and stderr to ours, stdin with -i (raw mode under -t on a TTY), window size
 * changes (SIGWINCH, seen as the terminal's 'resize') to the guest's pty, and SIGINT/SIGTERM/SIGHUP forwarded without -t.
 */
import type { Readable, Writable } from 'node:stream';
import type { ExecExit, GuestProcess } from './client.js';

/** The terminal side (process.stdin/stdout/stderr for the CLI). */
export interface ProcessTerminal {
  input: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  output: Writable & { columns?: number; rows?: number; isTTY?: boolean };
  errors: Writable;
}

const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** The size the guest pty should have now: the output terminal's, when it is one. */
export function terminalSize(output: ProcessTerminal['output']): { rows: number; cols: number } {
  return { rows: output.rows ?? 24, cols: output.columns ?? 80 };
}

/**
 * Runs `proc` attached to `terminal` until it exits and its output is written;
 * resolves with its exit. The terminal (raw mode, listeners) is restored either way.
 */
export async function attachProcess(proc: GuestProcess, terminal: ProcessTerminal, opts: { interactive: boolean; tty: boolean }): Promise<ExecExit> {
  const { input, output, errors } = terminal;
  const raw = opts.tty && opts.interactive && input.isTTY === true && typeof input.setRawMode === 'function';
  const onResize = (): void => {
    const { rows, cols } = terminalSize(output);
    proc.resize(cols, rows);
  };
  const forward = (signal: NodeJS.Signals): void => proc.kill(signal);
  // A terminal's stream refreshes its size on SIGWINCH and then emits 'resize'.
  if (opts.tty && output.isTTY) output.on('resize', onResize);
  // Under a tty the guest's terminal turns keys into signals; without one, ours are passed on.
  if (!raw) for (const s of FORWARDED_SIGNALS) process.on(s, forward);
  if (raw) input.setRawMode!(true);
  if (opts.interactive) {
    input.pipe(proc.stdin);
  } else {
    proc.stdin.end();
  }
  const drained = (from: Readable, to: Writable): Promise<void> =>
    new Promise((resolve) => {
      from.on('data', (chunk: Buffer) => {
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.once('end', resolve);
      from.once('error', () => resolve());
    });
  try {
    const [exit] = await Promise.all([proc.exited, drained(proc.stdout, output), drained(proc.stderr, errors)]);
    return exit;
  } finally {
    output.off('resize', onResize);
    for (const s of FORWARDED_SIGNALS) process.off(s, forward);
    if (opts.interactive) {
      input.unpipe(proc.stdin);
      input.pause();
    }
    if (raw) input.setRawMode!(false);
  }
}
