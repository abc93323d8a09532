import { lstat, mkdir, chmod } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { VmrunError } from '../errors.js';

/**
 * The per-user directory that holds running VMs' records, console logs and control
 * sockets: `VMRUN_RUNTIME_DIR` if set, else `$XDG_RUNTIME_DIR/vmrun`, else
 * `/tmp/vmrun-UID`. Runtime state, not data: it may vanish at logout or reboot.
 */
export function runtimeDirPath(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.VMRUN_RUNTIME_DIR;
  if (explicit !== undefined && explicit !== '') return resolve(explicit);
  const xdg = env.XDG_RUNTIME_DIR;
  // The XDG spec says a relative XDG_RUNTIME_DIR is invalid and must be ignored.
  if (xdg !== undefined && xdg !== '' && isAbsolute(xdg)) return join(xdg, 'vmrun');
  return join(tmpdir(), `vmrun-${uid()}`);
}

/**
 * Creates the runtime directory (mode 0700) if needed and checks that it is a real
 * directory owned by this user that nobody else can write: in a shared /tmp another
 * user could have created it first to read our consoles or plant sockets.
 */
export async function ensureRuntimeDir(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const dir = runtimeDirPath(env);
  let created: string | undefined;
  try {
    created = await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new VmrunError('host', `cannot create the runtime directory ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const st = await lstat(dir);
  if (!st.isDirectory()) throw new VmrunError('host', `the runtime directory ${dir} is not a directory (a symlink or file is in the way)`);
  if (st.uid !== uid()) throw new VmrunError('host', `the runtime directory ${dir} belongs to uid ${st.uid}, not to you (uid ${uid()})`);
  if ((st.mode & 0o077) !== 0) {
    // Tighten only a directory we just made (mkdir's mode is cut by the umask the other way);
    // never change the permissions of one the user pointed us at.
    if (created === undefined) {
      throw new VmrunError('host', `the runtime directory ${dir} is open to other users (mode ${(st.mode & 0o777).toString(8)}): use a private directory (chmod 700)`);
    }
    await chmod(dir, 0o700);
  }
  return dir;
}

function uid(): number {
  return process.getuid?.() ?? 0;
}
