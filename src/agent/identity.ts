/**
 * A restored clone's identity: every VM restored from one snapshot wakes with the
 * same entropy pool, clock, hostname and MAC. This gives it its own, through the
 * guest agent, before anything else runs in it (Firecracker's random-for-clones
 * explains why the pool matters: two clones must never draw the same bytes).
 */
import { waitForAgent } from './dial.js';
import type { IdentityOptions } from './client.js';

/**
 * How long a restored guest's agent may take to answer, by default: a guest that has
 * its host's cores to itself. Clones restored together share them (see clones.ts).
 */
export const IDENTITY_WAIT_MS = 30_000;

/** Refreshes the identity of the VM whose hybrid vsock socket is `vsockSocketPath`. */
export async function refreshGuestIdentity(vsockSocketPath: string, identity: IdentityOptions, timeoutMs = IDENTITY_WAIT_MS): Promise<void> {
  const agent = await waitForAgent(vsockSocketPath, { timeoutMs });
  try {
    await agent.setIdentity(identity);
  } finally {
    agent.close();
  }
}
