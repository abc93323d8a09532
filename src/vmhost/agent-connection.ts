import { existsSync } from 'node:fs';
import { VmrunError } from '../errors.js';
import { connectAgentVsock, type AgentClient } from '../agent/index.js';
import { VmRegistry, type VmEntry } from './registry.js';

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
  const agent = await connectAgentVsock(socket, opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs });
  return { vm, agent };
}
