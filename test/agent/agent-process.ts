// Runs the real guest agent (vmrun-init's host mode) on a unix socket for a test file.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGuestInit } from '../initramfs/guest-init-binary.js';
import { connectAgentUnix, type AgentClient } from '../../src/agent/index.js';

/** An agent process serving `socket`, and what it printed on stderr. */
export interface HostAgent {
  socket: string;
  dir: string;
  process: ChildProcess;
  stderr: () => string;
  connect: () => Promise<AgentClient>;
  stop: () => Promise<void>;
}

export async function startHostAgent(env: NodeJS.ProcessEnv = process.env): Promise<HostAgent> {
  const init = buildGuestInit();
  const dir = mkdtempSync(join(tmpdir(), 'vmrun-agent-'));
  const socket = join(dir, 'agent.sock');
  const child = spawn(init, ['--agent', '--listen-unix', socket], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 5000;
  while (!existsSync(socket)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the agent did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    socket,
    dir,
    process: child,
    stderr: () => stderr,
    connect: () => connectAgentUnix(socket),
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A file's shared fixture: one agent, one client, and a scratch directory. */
export interface AgentFixture {
  agent: HostAgent;
  client: AgentClient;
  work: string;
}

/**
 * Starts one agent and client for the calling test file (its beforeAll/afterAll), with
 * a scratch directory named after `prefix`; `ready` receives them before the tests run.
 */
export function useHostAgent(
  prefix: string,
  hooks: { beforeAll: (fn: () => Promise<void>) => void; afterAll: (fn: () => Promise<void>) => void },
  ready: (fixture: AgentFixture) => void,
): void {
  let fixture: AgentFixture | undefined;
  let started: HostAgent | undefined;
  hooks.beforeAll(async () => {
    started = await startHostAgent();
    fixture = { agent: started, client: await started.connect(), work: mkdtempSync(join(tmpdir(), prefix)) };
    ready(fixture);
  });
  hooks.afterAll(async () => {
    fixture?.client.close();
    await started?.stop();
    if (fixture) rmSync(fixture.work, { recursive: true, force: true });
  });
}
