/**
 * The snapshot directory in the store ($VMRUN_HOME/snapshots): named snapshots for
 * `vmrun snapshot ls | inspect | rm`, and resolution of a name or a path.
 */
import { existsSync, mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { vmrunHome } from '../host/paths.js';
import { VmrunError } from '../errors.js';
import { openSnapshot, type SnapshotInfo } from './snapshot.js';
import { pruneRamImages } from './ram-image.js';
import { templateSnapshots } from './templates.js';

export const SNAPSHOT_SUFFIX = '.vmsnap';
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Where named snapshots live. */
export function snapshotsDir(home: string = vmrunHome()): string {
  return join(home, 'snapshots');
}

/**
 * A snapshot reference: a path (contains "/" or names an existing file), or a name in
 * the store. `forWrite` creates the store directory and checks the name.
 */
export function resolveSnapshot(ref: string, opts: { forWrite?: boolean } = {}): string {
  if (ref.includes('/') || (!opts.forWrite && existsSync(ref))) return resolve(ref);
  const name = ref.endsWith(SNAPSHOT_SUFFIX) ? ref.slice(0, -SNAPSHOT_SUFFIX.length) : ref;
  if (!NAME.test(name)) throw new VmrunError('usage', `"${ref}" is not a snapshot name (letters, digits, _ . -) or a path`);
  const dir = snapshotsDir();
  if (opts.forWrite) mkdirSync(dir, { recursive: true, mode: 0o700 });
  return join(dir, `${name}${SNAPSHOT_SUFFIX}`);
}

/** One line of `vmrun snapshot ls`. */
export interface SnapshotListing {
  name: string;
  path: string;
  bytes: number;
  created?: string;
  image?: string;
  kernel?: string;
  memoryBytes?: number;
  cpus?: number;
  /** Why the file is unusable, when it is. */
  error?: string;
}

/** Every snapshot in the store, newest first; damaged ones are listed with their error. */
export function listSnapshots(): SnapshotListing[] {
  const dir = snapshotsDir();
  if (!existsSync(dir)) return [];
  const out: SnapshotListing[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(SNAPSHOT_SUFFIX)) continue;
    const path = join(dir, f);
    const base: SnapshotListing = { name: basename(f, SNAPSHOT_SUFFIX), path, bytes: statSync(path).size };
    try {
      const { metadata: m } = openSnapshot(path);
      out.push({ ...base, created: m.created, image: m.machine.image, kernel: m.machine.kernel, memoryBytes: m.machine.memoryBytes, cpus: m.machine.cpus });
    } catch (e) {
      out.push({ ...base, error: (e as Error).message });
    }
  }
  return out.sort((a, b) => (b.created ?? '').localeCompare(a.created ?? ''));
}

/** Validates and describes a snapshot (`vmrun snapshot inspect`). */
export function inspectSnapshot(ref: string): SnapshotInfo {
  return openSnapshot(resolveSnapshot(ref));
}

/** Deletes a snapshot and any RAM image expanded from it. */
export function removeSnapshot(ref: string): string {
  const path = resolveSnapshot(ref);
  if (!existsSync(path)) throw new VmrunError('not-found', `no such snapshot: ${ref}`);
  unlinkSync(path);
  pruneUnusedRamImages();
  return path;
}

/** Removes RAM images that no named snapshot or template restores from any more. */
export function pruneUnusedRamImages(): number {
  const still = listSnapshots().filter((s) => !s.error).map((s) => openSnapshot(s.path).opened);
  return pruneRamImages([...still, ...templateSnapshots()]);
}
