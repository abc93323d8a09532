import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';

/** Ctrl-] leaves an attached console without stopping the VM (telnet's escape). */
export const DETACH_KEY = 0x1d;

/** How an attach session ended: the user detached, or the VM's side closed (it stopped). */
export type AttachEnd = 'detached' | 'closed';

/** The terminal an attach session uses (process.stdin/stdout for the CLI). */
export interface AttachTerminal {
  input: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  output: Writable;
}

/**
 * Joins a terminal to an attached console stream: guest output to `output`, `input`
 * to the guest (raw mode on a TTY, so keys reach the guest as typed; Ctrl-] there
 * detaches). SIGINT detaches when not in raw mode. The end of `input` stops
 * forwarding but keeps showing output. Resolves when detached or the VM side closes;
 * the terminal is restored either way.
 */
export function joinTerminal(stream: Socket, initial: Buffer, terminal: AttachTerminal): Promise<AttachEnd> {
  const { input, output } = terminal;
  const raw = input.isTTY === true && typeof input.setRawMode === 'function';
  return new Promise((resolve) => {
    let ended = false;
    const finish = (how: AttachEnd): void => {
      if (ended) return;
      ended = true;
      process.off('SIGINT', onSigint);
      input.off('data', onInput);
      if (raw) input.setRawMode!(false);
      input.pause();
      stream.off('data', onOutput);
      stream.destroy();
      resolve(how);
    };
    const onOutput = (chunk: Buffer): void => {
      output.write(chunk);
    };
    const onInput = (chunk: Buffer): void => {
      const key = raw ? chunk.indexOf(DETACH_KEY) : -1;
      if (key >= 0) {
        if (key > 0) stream.write(chunk.subarray(0, key));
        finish('detached');
        return;
      }
      stream.write(chunk);
    };
    const onSigint = (): void => finish('detached');
    if (initial.length > 0) output.write(initial);
    stream.on('data', onOutput);
    stream.once('close', () => finish('closed'));
    process.on('SIGINT', onSigint);
    if (raw) input.setRawMode!(true);
    input.on('data', onInput);
    input.resume();
  });
}
