import type { Machine } from '../machine/machine.js';
import { VmrunError } from '../errors.js';

/** Ctrl-] leaves an interactive console and stops the guest, as in telnet. */
export const DETACH_KEY = 0x1d;

/**
 * Connects the host terminal to a machine's console: with `interactive`, standard
 * input goes to the guest (raw mode on a terminal, so keys reach the guest as typed);
 * Ctrl-C outside raw mode stops the guest with status 130. Returns the undo.
 */
export function attachConsole(machine: Machine, opts: { interactive: boolean }): () => void {
  const stdin = process.stdin;
  const raw = opts.interactive && stdin.isTTY;
  const onSigint = (): void => machine.stop(130);
  process.on('SIGINT', onSigint);
  const onData = (chunk: Buffer): void => {
    if (raw && chunk.includes(DETACH_KEY)) {
      machine.stop(130);
      return;
    }
    machine.writeConsole(chunk);
  };
  // End of standard input is end of the guest's console input (a Hermit read of fd 0 returns 0).
  const onEnd = (): void => machine.setConsoleInputOpen(false);
  if (opts.interactive) {
    if (raw) stdin.setRawMode(true);
    machine.setConsoleInputOpen(true);
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  }
  return () => {
    process.off('SIGINT', onSigint);
    if (opts.interactive) {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      if (raw) stdin.setRawMode(false);
      stdin.pause();
    }
  };
}

/**
 * Runs a machine in the foreground to its end: console attached, an optional time
 * limit, and the exit turned into vmrun's status (a guest failure or a time-out is a
 * VmrunError, which the command reports as one line with 125).
 */
export async function runToExit(machine: Machine, opts: { interactive: boolean; timeoutSeconds?: number }): Promise<number> {
  const detach = attachConsole(machine, { interactive: opts.interactive });
  return finishRun(machine, { timeoutSeconds: opts.timeoutSeconds, beforeExit: async () => detach() });
}

/**
 * Waits for a foreground machine's end under an optional time limit, runs
 * `beforeExit` (detach input, flush output), and turns the end into vmrun's status.
 */
export async function finishRun(machine: Machine, opts: { timeoutSeconds?: number; beforeExit: () => Promise<void> }): Promise<number> {
  let timedOut = false;
  const timer = opts.timeoutSeconds
    ? setTimeout(() => {
        timedOut = true;
        machine.stop();
      }, opts.timeoutSeconds * 1000)
    : undefined;
  const exit = await machine.wait().finally(() => {
    if (timer) clearTimeout(timer);
  });
  await opts.beforeExit();
  if (timedOut) throw new VmrunError('guest', `the guest did not finish within ${opts.timeoutSeconds} s (--timeout)`);
  if (exit.message && exit.reason !== 'killed') throw new VmrunError('guest', exit.message);
  return exit.exitCode;
}
