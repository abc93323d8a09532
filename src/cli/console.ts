import type { Machine } from '../machine/machine.js';

/** Ctrl-] leaves an interactive console and stops the guest, as in telnet. */
const DETACH_KEY = 0x1d;

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
  if (opts.interactive) {
    if (raw) stdin.setRawMode(true);
    stdin.on('data', onData);
    stdin.resume();
  }
  return () => {
    process.off('SIGINT', onSigint);
    if (opts.interactive) {
      stdin.off('data', onData);
      if (raw) stdin.setRawMode(false);
      stdin.pause();
    }
  };
}
