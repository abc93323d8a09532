/**
 * Test images for the e2e suite: Debian's static busybox as the whole userland, an
 * /etc/passwd and /etc/group the test controls, extra files, and any image config,
 * written as an OCI layout (pushable with skopeo, pullable with `vmrun run oci:...`).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { buildLayer, writeOciLayout, type ConfigSpec, type LayerEntrySpec } from '../../oci/image-builder.js';

/** Where Debian's busybox-static puts its binary. */
export const BUSYBOX = '/bin/busybox';

/** Applets the e2e workloads call by name (symlinks to busybox in /bin). */
const APPLETS = ['sh', 'echo', 'cat', 'id', 'pwd', 'sleep', 'usleep', 'wc', 'env', 'mount', 'test', 'true', 'stty', 'printf', 'ls'];

/** One /etc/passwd entry, as the guest's init will resolve it. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** What goes into a busybox test image. */
export interface BusyboxImageSpec {
  /** The image config; set `architecture` with `busybox` for another architecture's image. */
  config?: ConfigSpec;
  /** The static busybox binary to ship (default: the host's, BUSYBOX). */
  busybox?: string;
  /** /etc/passwd entries besides root. */
  users?: PasswdEntry[];
  /** Extra files: path (no leading slash) -> content; executable when `mode` says so. */
  files?: { path: string; content: string; mode?: number }[];
  /**
   * Size of an incompressible /opt/payload.bin, in a layer of its own stored without
   * compression: gives pulling the image and building its initramfs a cost that
   * stands out from the run-to-run noise of a loaded machine.
   */
  payloadBytes?: number;
  /** More busybox applets (symlinks in /bin) besides the ones every image has. */
  applets?: string[];
  /** Extra layers, in order, after the test's files (uncompressed when `compression` says so). */
  layers?: { entries: LayerEntrySpec[]; compression?: 'none' | 'gzip' | 'zstd' }[];
}

/** Why busybox images cannot be built here, or undefined when they can. */
export function busyboxUnavailableReason(): string | undefined {
  return existsSync(BUSYBOX) ? undefined : `${BUSYBOX} is missing (apt-get install busybox-static)`;
}

/** The /etc/passwd text of an image with these users (root first). */
export function passwdText(users: PasswdEntry[]): string {
  const root: PasswdEntry = { name: 'root', uid: 0, gid: 0, home: '/root' };
  return [root, ...users].map((u) => `${u.name}:x:${u.uid}:${u.gid}:${u.name}:${u.home}:/bin/sh\n`).join('');
}

/** Parses /etc/passwd text the way the guest's init reads it (name, uid, gid, home). */
export function parsePasswd(text: string): PasswdEntry[] {
  return text
    .split('\n')
    .filter((line) => line.includes(':'))
    .map((line) => {
      const f = line.split(':');
      return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' };
    });
}

/** Directory entries for the users' homes (owned by them) and their parents (root's). */
function homeDirectories(users: PasswdEntry[]): LayerEntrySpec[] {
  const entries = new Map<string, LayerEntrySpec>();
  for (const u of users) {
    const parts = u.home.split('/').filter(Boolean);
    parts.forEach((_, i) => {
      const name = `${parts.slice(0, i + 1).join('/')}/`;
      const own = i === parts.length - 1;
      if (!entries.has(name) || own) entries.set(name, { name, type: 'directory', ...(own ? { uid: u.uid, gid: u.gid } : {}) });
    });
  }
  return [...entries.values()].sort((a, b) => a.name.length - b.name.length);
}

/** Writes a one-image OCI layout at `dir` under `tag` (two layers: userland, then the test's files). */
export async function writeBusyboxLayout(dir: string, tag: string, spec: BusyboxImageSpec = {}): Promise<void> {
  const users = spec.users ?? [];
  const userland: LayerEntrySpec[] = [
    { name: 'bin/', type: 'directory' },
    { name: 'bin/busybox', content: readFileSync(spec.busybox ?? BUSYBOX), mode: 0o755 },
    ...[...new Set([...APPLETS, ...(spec.applets ?? [])])].map((a): LayerEntrySpec => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' })),
    { name: 'etc/', type: 'directory' },
    { name: 'etc/passwd', content: passwdText(users) },
    { name: 'etc/group', content: ['root:x:0:', ...users.map((u) => `g${u.gid}:x:${u.gid}:`)].join('\n') + '\n' },
    { name: 'root/', type: 'directory', mode: 0o700 },
    ...homeDirectories(users),
  ];
  const testFiles: LayerEntrySpec[] = (spec.files ?? []).map((f) => ({ name: f.path, content: f.content, mode: f.mode ?? 0o644 }));
  const layers = [await buildLayer(userland), ...(testFiles.length ? [await buildLayer(testFiles)] : [])];
  for (const extra of spec.layers ?? []) layers.push(await buildLayer(extra.entries, extra.compression));
  if (spec.payloadBytes) layers.push(await buildLayer([{ name: 'opt/payload.bin', content: randomBytes(spec.payloadBytes) }], 'none'));
  await writeOciLayout(dir, { [tag]: { layers, ...(spec.config ? { config: spec.config } : {}) } });
}
