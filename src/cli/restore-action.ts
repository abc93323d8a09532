/** `vmrun snapshot restore`: shared by the oclif command and the start-up fast path. */
import { Machine } from '../machine/machine.js';
import { runToExit } from './console.js';
import { resolveSnapshot } from '../snapshot/store.js';
import { VmrunError } from '../errors.js';
import type { FlagSpec } from './flag-spec.js';
import { parsePublishList } from '../network/publish.js';

export const RESTORE_FLAGS: FlagSpec = {
  detach: { type: 'boolean', char: 'd', description: 'run in the background' },
  name: { type: 'string', description: 'name of the background VM (with -d; with --count the clones are NAME-1 .. NAME-N)' },
  count: { type: 'string', description: 'restore N clones at once, in the background (implies -d): one id per line; each has its own MAC and vsock CID and shares the RAM image copy-on-write; they publish no ports' },
  interactive: { type: 'boolean', char: 'i', description: 'forward standard input to the guest console' },
  publish: {
    type: 'string',
    char: 'p',
    multiple: true,
    description: 'publish ports instead of the ones saved with the snapshot: [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp], HOSTIP 127.0.0.1 by default (two clones of one snapshot need different host ports)',
  },
  'catch-up-clock': { type: 'boolean', description: 'advance the guest clock by the time since the save (default: it continues from the save)' },
  'kvm-device': { type: 'string', description: 'KVM device', default: '/dev/kvm', hidden: true },
};

export interface RestoreArgs {
  snapshot: string;
  detach?: boolean;
  name?: string;
  interactive?: boolean;
  kvmDevice?: string;
  catchUpClock?: boolean;
  /** -p values; without any, the snapshot's own ports. */
  publish?: string[];
  /** --count: restore this many background clones. */
  count?: string;
}

/** Restores and runs a snapshot; returns the exit status for the process (or prints the background VM's id). */
export async function restoreAction(a: RestoreArgs, log: (line: string) => void): Promise<number> {
  const path = resolveSnapshot(a.snapshot);
  const publish = a.publish && a.publish.length > 0 ? parsePublishList(a.publish) : undefined;
  if (a.count !== undefined) {
    if (!/^\d+$/.test(a.count)) throw new VmrunError('usage', `--count "${a.count}" is not a whole number`);
    if (a.interactive) throw new VmrunError('usage', '--count runs the clones in the background: it cannot be combined with -i (use vmrun attach)');
    if (publish) throw new VmrunError('usage', '--count cannot be combined with -p: a host port can be published by one clone only');
    const { startClones } = await import('../vmhost/index.js');
    const clones = await startClones(path, Number(a.count), { name: a.name, restore: { kvmDevice: a.kvmDevice, catchUpClock: a.catchUpClock } });
    for (const vm of clones) log(vm.id);
    return 0;
  }
  if (a.detach) {
    // Loaded only here: the foreground path stays small for start-up time.
    const { startDetached, restoreStartBounds } = await import('../vmhost/index.js');
    const bounds = restoreStartBounds(1);
    const vm = await startDetached(
      { machine: { kind: 'restore', snapshot: path, options: { kvmDevice: a.kvmDevice, catchUpClock: a.catchUpClock, publish }, agentWaitMs: bounds.agentWaitMs } },
      { name: a.name, origin: 'restore', snapshot: path },
      { timeoutMs: bounds.startMs },
    );
    log(vm.id);
    return 0;
  }
  if (a.name) throw new VmrunError('usage', '--name needs -d');
  const machine = await Machine.restore(path, { consoleFd: 1, kvmDevice: a.kvmDevice, catchUpClock: a.catchUpClock, publish });
  return runToExit(machine, { interactive: a.interactive === true });
}
