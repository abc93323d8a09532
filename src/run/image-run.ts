/**
 * `vmrun run` as a library call, with the workload over the guest agent: boot the
 * image with a run configuration that says `workload=agent`, wait for the agent, and
 * hand it the workload (RUN). The caller gets the machine and the workload as a
 * process: stdout and stderr apart, stdin with an end, resize and signals; the
 * machine ends with the workload's status once the workload's connection closes.
 * Hermit images have no agent: their console is their output (`workload` undefined).
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { VmrunError } from '../errors.js';
import { Machine } from '../machine/machine.js';
import type { GuestProcess } from '../agent/client.js';
import { ensureRuntimeDir } from '../vmhost/runtime-dir.js';
import { prepareRun, type RunImageOptions } from './run-image.js';

/** The vsock CID of a run's guest (one VM per vsock socket, so any valid CID does). */
export const RUN_GUEST_CID = 3;

/** How long a booting guest's agent may take to answer (the emulated harness is slow). */
const AGENT_BOOT_TIMEOUT_MS = 180_000;

/** A started run. */
export interface ImageRun {
  machine: Machine;
  /** The workload (Linux images); its `exited` carries docker's status. */
  workload: GuestProcess | undefined;
}

/** Options of a run: the image's, and where the guest's console goes. */
export interface ImageRunOptions extends RunImageOptions {
  /** A guest without an agent (Hermit): its console, which is its output and input. */
  consoleFd?: number;
  consoleInput?: boolean;
  /** A Linux guest: its console, which carries kernel messages and vmrun-init's own failures. */
  kernelLogFd?: number;
}

/** Boots the image and starts its workload. */
export async function startImageRun(opts: ImageRunOptions): Promise<ImageRun> {
  const run = await prepareRun({ ...opts, workloadFromAgent: true });
  if (!run.guestAgent) {
    try {
      return { machine: await Machine.boot({ ...run.boot, consoleFd: opts.consoleFd, consoleInput: opts.consoleInput }), workload: undefined };
    } finally {
      run.cleanup();
    }
  }
  const socketPath = join(await ensureRuntimeDir(), `run-${randomBytes(6).toString('hex')}.vsock`);
  let machine: Machine;
  try {
    machine = await Machine.boot({ ...run.boot, vsock: { cid: RUN_GUEST_CID, socketPath }, consoleFd: opts.kernelLogFd });
  } finally {
    run.cleanup();
  }
  void machine.wait().finally(() => rmSync(socketPath, { force: true }));
  try {
    const workload = await handOver(machine, run.spec);
    return { machine, workload };
  } catch (e) {
    machine.stop();
    await machine.wait().catch(() => {});
    throw e;
  }
}

/** Waits for the agent (or the guest's early end, whichever comes first) and starts the workload. */
async function handOver(machine: Machine, spec: Awaited<ReturnType<typeof prepareRun>>['spec']): Promise<GuestProcess> {
  const endedFirst = machine.wait().then((exit) => {
    throw new VmrunError('guest', exit.message || `the guest ended (status ${exit.exitCode}) before its agent took the workload`);
  });
  const agent = await Promise.race([machine.agent(AGENT_BOOT_TIMEOUT_MS), endedFirst]);
  endedFirst.catch(() => {});
  const workload = agent.run(spec.argv, {
    env: spec.env,
    replaceEnv: true,
    cwd: spec.workdir,
    user: spec.user,
    groupAdd: spec.groupAdd ?? [],
    tty: spec.tty,
    stdin: spec.interactive === true,
    rows: spec.rows ?? 0,
    cols: spec.cols ?? 0,
  });
  // EXIT follows the end of both output streams on the connection, so by now every
  // byte is in the workload's streams: closing lets the agent power the VM off.
  void workload.exited.then(
    () => agent.close(),
    () => agent.close(),
  );
  return workload;
}
