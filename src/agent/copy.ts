/**
 * docker cp between the host and a guest, over an agent connection: a host path
 * travels as a tar stream the agent extracts; a guest path comes back as one that
 * is extracted here. Placement follows docker: into an existing directory, or as a
 * new name whose parent exists.
 */
import { lstat, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { VmrunError } from '../errors.js';
import type { AgentClient } from './client.js';
import { extractToHost, packHostPath } from './host-tar.js';

/** Copies `hostPath` (file, link or directory tree) to `guestPath`. */
export async function copyHostToGuest(client: AgentClient, hostPath: string, guestPath: string): Promise<void> {
  const st = await lstat(hostPath).catch(() => undefined);
  if (!st) throw new VmrunError('not-found', `no such file or directory: ${hostPath}`);
  await client.copyIn(packHostPath(hostPath), guestPath);
}

/** Copies `guestPath` to `hostPath`: into it if it is a directory, else as that name. */
export async function copyGuestToHost(client: AgentClient, guestPath: string, hostPath: string): Promise<void> {
  const st = await stat(hostPath).catch(() => undefined);
  if (st?.isDirectory()) return extractToHost(client.copyOut(guestPath), hostPath);
  if (hostPath.endsWith('/')) throw new VmrunError('not-found', `destination directory ${hostPath} does not exist`);
  const parent = dirname(hostPath);
  const parentStat = await stat(parent).catch(() => undefined);
  if (!parentStat?.isDirectory()) throw new VmrunError('not-found', `destination's parent directory ${parent} does not exist`);
  await extractToHost(client.copyOut(guestPath), parent, { rename: basename(hostPath) });
}
