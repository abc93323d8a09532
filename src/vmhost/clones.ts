/**
 * Background clones: one snapshot restored N times at once, each VM in its own host
 * process (`vmrun snapshot restore FILE --count N`). The snapshot is checked and its RAM
 * image expanded once, here, before any host starts; the hosts then map that image
 * copy-on-write. Each clone draws its own identity when its host restores it.
 */
import { openSnapshot } from '../snapshot/snapshot.js';
import { ensureRamImage } from '../snapshot/ram-image.js';
import { VmrunError, isVmrunError } from '../errors.js';
import { availableParallelism } from 'node:os';
import { DEFAULT_START_TIMEOUT_MS, startDetached } from './start.js';
import { IDENTITY_WAIT_MS } from '../agent/identity.js';
import { stopVm } from './control.js';
import { VmRegistry, type VmRecord } from './registry.js';
import type { RestoreOptions } from '../machine/machine.js';

/** Most clones one call starts (each is a host process). */
export const MAX_CLONES = 256;

export interface CloneOptions {
  /** Names the clones NAME-1 .. NAME-N. */
  name?: string;
  restore?: Omit<RestoreOptions, 'consoleFd' | 'vsock' | 'identity' | 'publish'>;
  env?: NodeJS.ProcessEnv;
  /** Bound on each host's start report (default: restoreStartBounds'). */
  timeoutMs?: number;
}

/**
 * How long each of `count` background restores started together on `cores` cores
 * (1 for `snapshot restore -d`) may take: to report its start (Node's start, the
 * restore, then the identity refresh), and, within that, for its guest's agent to
 * answer. Each shares the cores with the others, so both grow with restores per core;
 * the start bound holds the agent's wait whole.
 */
export function restoreStartBounds(count: number, cores = availableParallelism()): { startMs: number; agentWaitMs: number } {
  const perCore = Math.max(1, Math.ceil(count / Math.max(1, cores)));
  return { startMs: (DEFAULT_START_TIMEOUT_MS + IDENTITY_WAIT_MS) * perCore, agentWaitMs: IDENTITY_WAIT_MS * perCore };
}

/**
 * Starts `count` background VMs restored from the snapshot at `path`, all at once, and
 * resolves with their records in order. They publish no ports (the saved ones could be
 * bound only once). If any fails to start, the others are stopped and removed and the
 * first failure is thrown: all or none.
 */
export async function startClones(path: string, count: number, opts: CloneOptions = {}): Promise<VmRecord[]> {
  if (!Number.isInteger(count) || count < 1 || count > MAX_CLONES) throw new VmrunError('usage', `--count must be a whole number from 1 to ${MAX_CLONES} (got ${count})`);
  const snap = openSnapshot(path);
  const writable = count > 1 ? snap.metadata.machine.disks?.find((d) => !d.readOnly) : undefined;
  if (writable) throw new VmrunError('usage', `the snapshot ${path} has the writable disk ${writable.path}: its clones would all write it`);
  await ensureRamImage(snap.opened);
  // N host processes start together on this host's cores: each takes about N/cores times as long as one alone.
  const bounds = restoreStartBounds(count);
  const timeoutMs = opts.timeoutMs ?? bounds.startMs;
  const started = await Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      startDetached(
        { machine: { kind: 'restore', snapshot: path, options: { ...opts.restore, publish: [] }, agentWaitMs: bounds.agentWaitMs } },
        { name: opts.name === undefined ? undefined : `${opts.name}-${i + 1}`, origin: 'restore', snapshot: path },
        { env: opts.env, timeoutMs },
      ),
    ),
  );
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const records = started.filter((r): r is PromiseFulfilledResult<VmRecord> => r.status === 'fulfilled').map((r) => r.value);
  if (!failed) return records;
  const registry = await VmRegistry.open(opts.env);
  await Promise.allSettled(records.map(async (r) => {
    await stopVm(registry, r.id).catch(() => {});
    await registry.remove(r);
  }));
  const e = failed.reason as unknown;
  throw isVmrunError(e) ? e : new VmrunError('internal', (e as Error).message, { cause: e });
}
