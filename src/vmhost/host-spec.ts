import { Machine, type BootOptions, type RestoreOptions } from '../machine/machine.js';
import { VmrunError } from '../errors.js';
import { openSnapshot } from '../snapshot/snapshot.js';
import { hostnameFor } from '../machine/clone-identity.js';
import { refreshGuestIdentity } from '../agent/identity.js';

/** The CID background VMs' guests get (any of the guest range works; each VM has its own device). */
export const GUEST_CID = 3;

/**
 * How a host process starts its machine. Each kind is one way to get a running
 * Machine; a new way (restoring a snapshot, running an image) is a new member here
 * and a new case in `startMachine`, nothing else in the host changes.
 */
export type MachineSpec =
  /** Direct kernel boot (vmrun boot -d; vmrun run -d boots its assembled initramfs this way too). */
  | { kind: 'boot'; options: Omit<BootOptions, 'consoleFd'> }
  /**
   * Restore a snapshot file (vmrun snapshot restore -d). `agentWaitMs` bounds the wait
   * for its guest agent's answer to the identity refresh (default IDENTITY_WAIT_MS).
   */
  | { kind: 'restore'; snapshot: string; options?: Omit<RestoreOptions, 'consoleFd'>; agentWaitMs?: number };

/** Everything the host process is told at start: the machine and the policy around it. */
export interface HostSpec {
  machine: MachineSpec;
  /** Stop the guest after this many seconds and record it as a failure (vmrun boot --timeout). */
  timeoutSeconds?: number;
  /** Remove the VM's record, log and name once it has ended (docker's --rm). */
  removeOnExit?: boolean;
  /** Give a booted machine a vsock device, so its guest agent serves exec and cp (vmrun run -d). */
  guestAgent?: boolean;
}

/** Where a host process serves its machine, and what it is called. */
export interface MachinePlace {
  vsockSocket: string;
  /** The VM's name, or its id: a restored guest's hostname. */
  name: string;
}

/** Starts the machine a spec describes; the host process owns it from then on. */
export type MachineStarter = (spec: HostSpec, place: MachinePlace) => Promise<Machine>;

/** The starter the host process uses: every kind the library knows how to start. */
export const startMachine: MachineStarter = async ({ machine: spec, guestAgent }, place) => {
  switch (spec.kind) {
    case 'boot':
      // No consoleFd: the host needs the output as a stream for the log and attached clients.
      return Machine.boot({ ...spec.options, consoleFd: undefined, vsock: guestAgent ? { cid: GUEST_CID, socketPath: place.vsockSocket } : undefined });
    case 'restore': {
      // A snapshot of a VM with a vsock device gets its socket back (its agent reconnects by itself).
      const saved = openSnapshot(spec.snapshot).metadata.machine;
      const hasVsock = saved.vsock !== undefined;
      const identity = { hostname: hostnameFor(place.name), ...spec.options?.identity };
      const machine = await Machine.restore(spec.snapshot, { ...spec.options, identity, consoleFd: undefined, vsock: hasVsock ? { socketPath: place.vsockSocket } : undefined });
      // An image's VM (vmrun run) with a vsock device runs vmrun-init's agent: it refreshes the guest's side of the identity.
      if (hasVsock && saved.image !== undefined) {
        try {
          await refreshGuestSideOfIdentity(machine, place.vsockSocket, spec.agentWaitMs);
        } catch (e) {
          machine.stop();
          await machine.wait();
          throw e;
        }
      }
      return machine;
    }
  }
};

/**
 * The one call site of the guest side of a restored VM's identity: the guest agent
 * reseeds the entropy pool, steps the clock and sets the hostname and eth0's MAC (the
 * clone's, as its devices already hold it) before anything else reaches the guest.
 * Every background restore (snapshot restore -d, --count) comes through here.
 */
async function refreshGuestSideOfIdentity(machine: Machine, vsockSocket: string, timeoutMs: number | undefined): Promise<void> {
  const { hostname, mac } = machine.cloneIdentity ?? {};
  await refreshGuestIdentity(vsockSocket, { hostname, mac }, timeoutMs);
}

/** Parses and checks a spec file written by `startDetached`. */
export function parseHostSpec(text: string, file: string): HostSpec {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new VmrunError('internal', `the VM spec ${file} is not JSON: ${(e as Error).message}`);
  }
  const spec = value as Partial<HostSpec> | null;
  const kind = spec?.machine?.kind;
  if (kind !== 'boot' && kind !== 'restore') throw new VmrunError('internal', `the VM spec ${file} has no known machine kind`);
  return spec as HostSpec;
}
