/**
 * `vmrun run` in the foreground with the workload over the agent: the workload's
 * stdout and stderr go to vmrun's own, vmrun's stdin (with -i) goes to the workload
 * and its end is the workload's EOF, the terminal's size follows SIGWINCH (with -t),
 * and signals reach the workload as docker's sig-proxy does: Ctrl-C is SIGINT for
 * the workload, a second Ctrl-C stops the VM (130).
 */
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { ImageRun } from '../run/image-run.js';
import type { GuestProcess } from '../agent/client.js';
import { DETACH_KEY, finishRun } from './console.js';

export interface WorkloadStdioOptions {
  interactive: boolean;
  tty: boolean;
  timeoutSeconds?: number;
}

/** Runs `run` to its end with this process's stdio attached; returns vmrun's exit status. */
export async function runWorkloadToExit(run: Pick<ImageRun, 'machine'> & { workload: GuestProcess }, opts: WorkloadStdioOptions): Promise<number> {
  const { machine, workload } = run;
  const outputDone = Promise.all([forward(workload.stdout, process.stdout), forward(workload.stderr, process.stderr)]);
  const detach = attachInput(run, opts);
  return finishRun(machine, {
    timeoutSeconds: opts.timeoutSeconds,
    // The VM ends once the agent has sent everything; the last bytes may still be on their way to our fds.
    beforeExit: async () => {
      detach();
      await outputDone;
    },
  });
}

/** Copies a workload stream to one of ours without ending ours; resolves when all of it is written. */
async function forward(from: Readable, to: Writable): Promise<void> {
  try {
    for await (const chunk of from) {
      if (!to.write(chunk)) await Promise.race([once(to, 'drain'), once(to, 'close')]);
    }
  } catch {
    // The VM was stopped under the stream (a time-out, Ctrl-C twice): what came is written.
  }
}

function attachInput(run: Pick<ImageRun, 'machine'> & { workload: GuestProcess }, opts: WorkloadStdioOptions): () => void {
  const { machine, workload } = run;
  const stdin = process.stdin;
  const raw = opts.interactive && opts.tty && stdin.isTTY === true;
  let interrupts = 0;
  const onSigint = (): void => {
    if (++interrupts === 1) workload.kill('SIGINT');
    else machine.stop(130);
  };
  const onSigterm = (): void => workload.kill('SIGTERM');
  const onResize = (): void => workload.resize(process.stdout.columns, process.stdout.rows);
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  if (opts.tty && process.stdout.isTTY) process.stdout.on('resize', onResize);
  const onData = (chunk: Buffer): void => {
    if (raw && chunk.includes(DETACH_KEY)) {
      machine.stop(130);
      return;
    }
    workload.stdin.write(chunk);
  };
  const onEnd = (): void => void workload.stdin.end();
  if (opts.interactive) {
    if (raw) stdin.setRawMode(true);
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  }
  return () => {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    process.stdout.off('resize', onResize);
    if (opts.interactive) {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      if (raw) stdin.setRawMode(false);
      stdin.pause();
    }
  };
}
