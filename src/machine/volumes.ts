/**
 * Volumes: host directories shared live with a Linux guest over virtio-fs, each
 * served by its own virtiofsd (docs/volumes.md). Parsing of docker's `-v` and
 * `--mount type=bind` forms, the checks made before anything is pulled or booted,
 * and the tags that name each volume to the guest.
 */
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { isAbsolute, posix } from 'node:path';
import { VmrunError } from '../errors.js';

/** One volume: an existing host directory at an absolute guest path. */
export interface VolumeOptions {
  /** Absolute path of an existing directory on the host. */
  hostDir: string;
  /** Absolute path in the guest; created there if missing. */
  guestDir: string;
  /** Enforced by the host (virtiofsd sees a read-only bind), not only by the guest's mount flags. */
  readOnly?: boolean;
}

/** Where Debian's QEMU (qemu-system-common) installs virtiofsd. */
export const DEFAULT_VIRTIOFSD = '/usr/lib/qemu/virtiofsd';

/** The virtio-fs tag of the n-th volume (what the guest mounts it by). */
export function volumeTag(index: number): string {
  return `vmrun${index}`;
}

function checkGuestDir(guestDir: string, what: string): string {
  if (!guestDir.startsWith('/')) throw new VmrunError('usage', `${what}: the guest path "${guestDir}" is not absolute`);
  if (guestDir.includes('\0')) throw new VmrunError('usage', `${what}: the guest path contains a NUL character`);
  const normal = posix.normalize(guestDir).replace(/\/+$/, '');
  if (normal === '') throw new VmrunError('usage', `${what}: a volume cannot be mounted on the guest's /`);
  return normal;
}

/** Parses docker's `-v HOSTDIR:GUESTDIR[:ro|:rw]`; HOSTDIR must be absolute (no named volumes). */
export function parseVolumeFlag(value: string): VolumeOptions {
  const what = `-v "${value}"`;
  const parts = value.split(':');
  let readOnly = false;
  if (parts.length === 3) {
    const mode = parts.pop()!;
    if (mode !== 'ro' && mode !== 'rw') throw new VmrunError('usage', `${what}: unknown option "${mode}" (ro or rw)`);
    readOnly = mode === 'ro';
  }
  if (parts.length !== 2) throw new VmrunError('usage', `${what} is not HOSTDIR:GUESTDIR[:ro]`);
  const [hostDir, guestDir] = parts as [string, string];
  if (!isAbsolute(hostDir)) throw new VmrunError('usage', `${what}: the host directory "${hostDir}" is not an absolute path (named volumes are not supported)`);
  return { hostDir, guestDir: checkGuestDir(guestDir, what), readOnly };
}

/** Parses docker's `--mount type=bind,src=HOSTDIR,dst=GUESTDIR[,readonly]`. */
export function parseMountFlag(value: string): VolumeOptions {
  const what = `--mount "${value}"`;
  let type: string | undefined;
  let src: string | undefined;
  let dst: string | undefined;
  let readOnly = false;
  for (const field of value.split(',')) {
    const eq = field.indexOf('=');
    const key = eq < 0 ? field : field.slice(0, eq);
    const v = eq < 0 ? undefined : field.slice(eq + 1);
    switch (key) {
      case 'type': type = v; break;
      case 'src': case 'source': src = v; break;
      case 'dst': case 'destination': case 'target': dst = v; break;
      case 'readonly': case 'ro':
        if (v !== undefined && !['true', '1', 'false', '0'].includes(v)) throw new VmrunError('usage', `${what}: ${key}=${v} is not true or false`);
        readOnly = v === undefined || v === 'true' || v === '1';
        break;
      default: throw new VmrunError('usage', `${what}: unknown field "${key}" (type, src, dst, readonly)`);
    }
  }
  if (type !== 'bind') throw new VmrunError('usage', `${what}: only type=bind is supported`);
  if (!src) throw new VmrunError('usage', `${what}: src= is missing`);
  if (!dst) throw new VmrunError('usage', `${what}: dst= is missing`);
  if (!isAbsolute(src)) throw new VmrunError('usage', `${what}: the host directory "${src}" is not an absolute path`);
  return { hostDir: src, guestDir: checkGuestDir(dst, what), readOnly };
}

/**
 * Checks every volume before a VM exists: the host directory exists, is a directory
 * vmrun can read (and write, unless read-only), and no two volumes share a guest
 * path. Returns them with the host path resolved (symlinks included), as virtiofsd
 * will serve it.
 */
export function checkVolumes(volumes: readonly VolumeOptions[]): Required<VolumeOptions>[] {
  const seen = new Set<string>();
  return volumes.map((v) => {
    const guestDir = checkGuestDir(v.guestDir, `volume ${v.hostDir}:${v.guestDir}`);
    if (seen.has(guestDir)) throw new VmrunError('usage', `two volumes are mounted at ${guestDir} in the guest`);
    seen.add(guestDir);
    let hostDir: string;
    try {
      hostDir = realpathSync(v.hostDir);
      if (!statSync(hostDir).isDirectory()) throw new VmrunError('usage', `volume ${v.hostDir} is not a directory`);
      accessSync(hostDir, v.readOnly ? constants.R_OK | constants.X_OK : constants.R_OK | constants.W_OK | constants.X_OK);
    } catch (e) {
      if (e instanceof VmrunError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new VmrunError('usage', `volume ${v.hostDir} does not exist (vmrun does not create host directories)`, { cause: e });
      throw new VmrunError('usage', `volume ${v.hostDir} cannot be ${v.readOnly ? 'read' : 'read and written'} (${code ?? (e as Error).message})`, { cause: e });
    }
    return { hostDir, guestDir, readOnly: v.readOnly === true };
  });
}

/** The virtiofsd to start: VMRUN_VIRTIOFSD, else Debian's; one clear error if it is missing. */
export function findVirtiofsd(env: NodeJS.ProcessEnv = process.env): string {
  const path = env.VMRUN_VIRTIOFSD || DEFAULT_VIRTIOFSD;
  try {
    accessSync(path, constants.X_OK);
  } catch (e) {
    throw new VmrunError('host', `volumes need virtiofsd, and ${path} cannot be run: install qemu-system-common (Debian) or set VMRUN_VIRTIOFSD`, { cause: e });
  }
  return path;
}
