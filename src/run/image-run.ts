/**
 * `vmrun run` as a library call, with the workload over the guest agent. The guest
 * boots with a run configuration that says `workload=agent` and is the same for every
 * run of the image, so a booted one can be a template: the first run of an (image,
 * kernel, init, memory, cpus, network) combination boots and saves it once the agent
 * answers; later runs restore it instead of booting. Either way the run then gives
 * the guest its identity (entropy, clock, hostname, MAC: IDENTITY) and hands the
 * agent its workload (RUN); the machine ends with the workload's status once the
 * workload's connection closes. Hermit images have no agent: their console is their
 * output (`workload` undefined).
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { VmrunError } from '../errors.js';
import { Machine } from '../machine/machine.js';
import type { AgentClient, GuestProcess } from '../agent/client.js';
import { ensureRuntimeDir } from '../vmhost/runtime-dir.js';
import { findTemplate, removeTemplateFiles } from '../snapshot/templates.js';
import { prepareRun, type PreparedRun, type RunImageOptions } from './run-image.js';
import { saveTemplate, templateKey, templateRefusal } from './template-run.js';

/** The vsock CID of a run's guest (one VM per vsock socket, so any valid CID does). */
export const RUN_GUEST_CID = 3;

/** How long a booting guest's agent may take to answer (the emulated harness is slow). */
const AGENT_BOOT_TIMEOUT_MS = 180_000;

/** How the run's guest started, and the time each step took. */
export interface RunStart {
  /** `template`: restored from one; `boot`: booted (and `templateSaved` if this run made the template). */
  kind: 'template' | 'boot';
  templateSaved: boolean;
  /** Why no template was used or made, when none was (a damaged one removed, a failed save). */
  coldReason?: string;
  /** The template's id, when one was used or made. */
  template?: string;
  steps: { step: string; ms: number }[];
}

/** A started run. */
export interface ImageRun {
  machine: Machine;
  /** The workload (Linux images); its `exited` carries docker's status. */
  workload: GuestProcess | undefined;
  start: RunStart;
}

/** Options of a run: the image's, and where the guest's console goes. */
export interface ImageRunOptions extends RunImageOptions {
  /** A guest without an agent (Hermit): its console, which is its output and input. */
  consoleFd?: number;
  consoleInput?: boolean;
  /** A Linux guest: its console, which carries kernel messages and vmrun-init's own failures. */
  kernelLogFd?: number;
  /** Boot, even if a template exists, and make none. */
  cold?: boolean;
}

/** Boots (or restores) the image's guest and starts its workload. */
export async function startImageRun(opts: ImageRunOptions): Promise<ImageRun> {
  const t0 = performance.now();
  let last = t0;
  const steps: RunStart['steps'] = [];
  const step = (name: string): void => {
    const now = performance.now();
    steps.push({ step: name, ms: Math.round((now - last) * 100) / 100 });
    last = now;
  };
  const run = await prepareRun({ ...opts, workloadFromAgent: true, onStep: (name) => step(`prepare: ${name}`) });
  if (!run.guestAgent) {
    try {
      const machine = await Machine.boot({ ...run.boot, consoleFd: opts.consoleFd, consoleInput: opts.consoleInput });
      step('boot');
      return { machine, workload: undefined, start: { kind: 'boot', templateSaved: false, coldReason: 'no guest agent', steps } };
    } finally {
      run.cleanup();
    }
  }
  const socketPath = join(await ensureRuntimeDir(), `run-${randomBytes(6).toString('hex')}.vsock`);
  let coldReason = templateRefusal(run, opts);
  const key = coldReason ? undefined : templateKey(run);
  let template = key ? findTemplate(key) : undefined;
  let machine: Machine | undefined;
  try {
    if (template && key) {
      try {
        machine = await Machine.restore(template, { vsock: { socketPath }, publish: run.boot.network?.publish ?? [], consoleFd: opts.kernelLogFd });
      } catch (e) {
        // A damaged template (or one this host cannot run) is a cache entry gone bad:
        // it goes, this run boots, and the boot makes a new one.
        removeTemplateFiles(key);
        coldReason = `template unusable (${(e as Error).message}); removed`;
        template = undefined;
      }
    }
    machine ??= await Machine.boot({ ...run.boot, vsock: { cid: RUN_GUEST_CID, socketPath }, consoleFd: opts.kernelLogFd });
  } finally {
    run.cleanup();
  }
  step(template ? 'restore the template' : 'boot');
  void machine.wait().finally(() => rmSync(socketPath, { force: true }));
  try {
    const agent = await agentOf(machine);
    step('agent answered');
    const made = !template && key !== undefined ? await saveTemplate(machine, key, run, opts.image) : { saved: false };
    if (made.saved) step('save the template');
    if (made.error) coldReason = `the template could not be saved: ${made.error}`;
    const templateSaved = made.saved;
    await agent.setIdentity({ hostname: run.spec.hostname, ...(machine.mac ? { mac: machine.mac } : {}) });
    step('identity (entropy, clock, hostname, MAC)');
    const workload = handOver(agent, run.spec);
    step('workload handed over');
    return { machine, workload, start: { kind: template ? 'template' : 'boot', templateSaved, coldReason, template: key, steps } };
  } catch (e) {
    machine.stop();
    await machine.wait().catch(() => {});
    throw e;
  }
}

/** Waits for the agent, or for the guest's early end, whichever comes first. */
async function agentOf(machine: Machine): Promise<AgentClient> {
  const endedFirst = machine.wait().then((exit) => {
    throw new VmrunError('guest', exit.message || `the guest ended (status ${exit.exitCode}) before its agent took the workload`);
  });
  endedFirst.catch(() => {});
  return Promise.race([machine.agent(AGENT_BOOT_TIMEOUT_MS), endedFirst]);
}

/** Starts the workload (RUN); the connection closes when it has ended, which ends the VM. */
function handOver(agent: AgentClient, spec: PreparedRun['spec']): GuestProcess {
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
