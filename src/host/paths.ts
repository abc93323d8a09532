import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { VmrunError } from '../errors.js';

/**
 * vmrun's data directory, shared by the image store, snapshots and kernels:
 * `VMRUN_HOME` if set, else `$XDG_DATA_HOME/vmrun`, else `~/.local/share/vmrun`.
 */
export function vmrunHome(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.VMRUN_HOME;
  if (explicit !== undefined && explicit !== '') return resolve(explicit);
  const xdg = env.XDG_DATA_HOME;
  // The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
  if (xdg !== undefined && xdg !== '' && isAbsolute(xdg)) return join(xdg, 'vmrun');
  const home = env.HOME || homedir();
  if (!home) throw new VmrunError('host', 'cannot find a data directory: set VMRUN_HOME or HOME');
  return join(home, '.local', 'share', 'vmrun');
}

/** Where the OCI image store (blobs, image index, layer indexes) lives inside a vmrun home. */
export function imageStoreDir(home: string = vmrunHome()): string {
  return join(home, 'images');
}
