import { VmrunError, isVmrunError } from '../errors.js';
import { VmControlClient } from './client.js';
import type { VmExit } from './protocol.js';
import type { VmEntry, VmRegistry } from './registry.js';

/** How long a stop may take: the host stops the vCPUs, flushes the log and records the end. */
const STOP_TIMEOUT_MS = 15_000;

/** Whether the VM's host process is (still) there to talk to. */
export function isLive(vm: VmEntry): boolean {
  return vm.status === 'starting' || vm.status === 'running' || vm.status === 'paused';
}

/** Stops VM `ref` and resolves once its end is recorded; a VM that already ended is left as it is (undefined). */
export async function stopVm(registry: VmRegistry, ref: string): Promise<VmExit | undefined> {
  const vm = await registry.resolve(ref);
  if (!isLive(vm)) return undefined;
  if (vm.status === 'starting') throw new VmrunError('usage', `VM ${ref} is still starting; try again in a moment`);
  const client = await VmControlClient.connect(vm, registry.paths(vm.record.id).controlSocket);
  try {
    return await client.request({ op: 'stop' }, STOP_TIMEOUT_MS);
  } finally {
    client.close();
  }
}

/** Removes VM `ref`'s record, log and name; a running VM only with `force` (then it is stopped first). */
export async function removeVm(registry: VmRegistry, ref: string, opts: { force?: boolean } = {}): Promise<void> {
  const vm = await registry.resolve(ref);
  if (isLive(vm)) {
    if (!opts.force) throw new VmrunError('usage', `VM ${ref} is ${vm.status}: stop it first, or use --force`);
    await stopVm(registry, vm.record.id);
  }
  await registry.remove(vm.record);
}

/**
 * Runs `action` on every VM reference, going on past failures (as docker does), then
 * throws one error listing them all, with the first failure's kind.
 */
export async function forEachVm(refs: string[], action: (ref: string) => Promise<void>): Promise<void> {
  const failures: VmrunError[] = [];
  for (const ref of refs) {
    try {
      await action(ref);
    } catch (e) {
      failures.push(isVmrunError(e) ? e : new VmrunError('internal', (e as Error).message, { cause: e }));
    }
  }
  if (failures.length > 0) throw new VmrunError(failures[0]!.kind, failures.map((f) => f.message).join('; '), { cause: failures[0] });
}
