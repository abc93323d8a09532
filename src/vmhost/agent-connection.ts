import { existsSync } from 'node:fs';
import { VmrunError } from '../errors.js';
import { waitForAgent, type AgentClient } from '../agent/index.js';
import { VmRegistry, type VmEntry } from './registry.js';

/** How long `vmrun exec` and `vmrun cp` wait for the agent of a VM that is still booting. */
export const AGENT_WAIT_MS = 30_000;

/**
 * Connects to the guest agent of a background VM (name, id or id prefix) through the
 * vsock socket its host process serves: what `vmrun exec` and `vmrun cp` use.
 */
export async function connectVmAgent(ref: string, opts: { registry?: VmRegistry; timeoutMs?: number } = {}): Promise<{ vm: VmEntry; agent: AgentClient }> {
  const registry = opts.registry ?? (await VmRegistry.open());
  const vm = await registry.resolve(ref);
  if (vm.status !== 'running') throw new VmrunError('usage', `VM ${vm.record.id} is ${vm.status}, not running`);
  const socket = registry.paths(vm.record.id).vsockSocket;
  if (!existsSync(socket)) throw new VmrunError('usage', `VM ${vm.record.id} has no guest channel (it was not started by \`vmrun run\` with the guest agent)`);
  // A VM started a moment ago may still be booting: its agent is waited for (bounded).
  const agent = await waitForAgent(socket, { timeoutMs: opts.timeoutMs ?? AGENT_WAIT_MS });
  return { vm, agent };
}
