import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { VmrunError } from '../errors.js';

/**
 * vmrun's cache root (rebuildable artifacts: guest kernels, image initramfs files):
 * `VMRUN_CACHE` if set, else `$XDG_CACHE_HOME/vmrun`, else `~/.cache/vmrun`. The same
 * rule as guest/kernel/build.sh and the nested-KVM harness.
 */
export function vmrunCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VMRUN_CACHE) return resolve(env.VMRUN_CACHE);
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'vmrun');
  const home = env.HOME || homedir();
  if (!home) throw new VmrunError('host', 'cannot find a cache directory: set VMRUN_CACHE or HOME');
  return join(home, '.cache', 'vmrun');
}
