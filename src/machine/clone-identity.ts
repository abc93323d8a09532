/**
 * What sets a VM restored from a snapshot apart from every other VM restored from the
 * same snapshot. Chosen here and nowhere else, for every restore (Machine.restore,
 * Machine.restoreMany, `vmrun snapshot restore --count`). The host side applies it while
 * the restore builds the VM: the MAC goes into virtio-net's config space, the CID into
 * virtio-vsock's (the guest re-reads it on the transport reset the device sends after a
 * restore). The guest side (eth0's address, hostname, entropy, clock) is refreshed
 * through the guest agent right after the restore.
 */
import { randomInt } from 'node:crypto';
import { addon } from '../native/addon.js';
import { VmrunError } from '../errors.js';
import { randomMac } from '../network/options.js';
import type { SnapshotMetadata } from '../snapshot/metadata.js';

/** One restored VM's own identity. */
export interface CloneIdentity {
  /** virtio-net's MAC (locally administered, unicast); absent when the snapshot has no network device. */
  mac?: string;
  /** virtio-vsock's guest CID; absent when the snapshot has no vsock device. */
  vsockCid?: number;
  /** The guest's hostname, set in the guest by the agent (a background clone's name or id). */
  hostname?: string;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * The identity of one VM restored from a snapshot of `machine`: what `given` fixes
 * (checked), the rest drawn fresh: a random MAC for a network device, a random CID for
 * a vsock device, never one in `cidsTaken` (the clones of one batch), which it extends.
 */
export function chooseCloneIdentity(
  machine: SnapshotMetadata['machine'],
  given: Partial<CloneIdentity> = {},
  cidsTaken: Set<number> = new Set(),
): CloneIdentity {
  const identity: CloneIdentity = {};
  if (given.mac !== undefined) {
    if (!machine.network) throw new VmrunError('usage', 'a MAC was given for a snapshot without a network device');
    const mac = given.mac.toLowerCase();
    if (!MAC.test(mac) || (parseInt(mac.slice(0, 2), 16) & 1) !== 0) throw new VmrunError('usage', `MAC "${given.mac}" is not a unicast address like 02:00:00:00:00:01`);
    identity.mac = mac;
  } else if (machine.network) {
    identity.mac = randomMac();
  }
  const { minCid, maxCid } = addon().vsockLimits;
  if (given.vsockCid !== undefined) {
    if (!machine.vsock) throw new VmrunError('usage', 'a vsock CID was given for a snapshot without a vsock device');
    if (!Number.isInteger(given.vsockCid) || given.vsockCid < minCid || given.vsockCid > maxCid)
      throw new VmrunError('usage', `vsock CID ${given.vsockCid} is out of range (${minCid}-${maxCid})`);
    identity.vsockCid = given.vsockCid;
  } else if (machine.vsock) {
    let cid: number;
    do cid = minCid + randomInt(Math.min(maxCid - minCid + 1, 2 ** 48 - 1));
    while (cidsTaken.has(cid) || cid === machine.vsock.cid);
    identity.vsockCid = cid;
  }
  if (identity.vsockCid !== undefined) cidsTaken.add(identity.vsockCid);
  if (given.hostname !== undefined) {
    if (!HOSTNAME.test(given.hostname)) throw new VmrunError('usage', `hostname "${given.hostname}" is not a host name (letters, digits, -; up to 63)`);
    identity.hostname = given.hostname;
  }
  return identity;
}

/** A host name for a VM called `name` (a background VM's name or id): other characters become "-". */
export function hostnameFor(name: string): string {
  const h = name.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 63).replace(/^-+|-+$/g, '');
  return h || 'vmrun';
}
