/**
 * The raw RAM image a restore maps copy-on-write: expanded once from a snapshot's zstd
 * chunks into the cache, then shared by every VM restored from that snapshot. It is
 * keyed by the snapshot file's identity (device, inode, size, mtime, header checksum),
 * so a changed file never reuses a stale image.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { addon } from '../native/addon.js';
import { vmrunCacheDir } from '../host/cache-dir.js';
import { fromNativeError } from '../errors.js';
import type { OpenedSnapshot } from './snapshot-file.js';

/** Where RAM images live. */
export function ramImageDir(): string {
  return join(vmrunCacheDir(), 'snapshots');
}

function ramImageKey(s: OpenedSnapshot): string {
  const id = `${s.file.dev}:${s.file.ino}:${s.file.size}:${s.file.mtimeNs}:${s.header.tableCrc}`;
  return createHash('sha256').update(id).digest('hex').slice(0, 32);
}

/** Returns the path of the snapshot's RAM image, expanding (and verifying) it first if needed. */
export async function ensureRamImage(s: OpenedSnapshot): Promise<{ path: string; built: boolean }> {
  const dir = ramImageDir();
  const path = join(dir, `${ramImageKey(s)}.ram`);
  if (existsSync(path)) return { path, built: false };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    await addon().buildRamImage(s.path, s.memoryData.offset, s.memoryData.length, s.memoryIndex, s.metadata.machine.memoryBytes, path);
  } catch (e) {
    throw fromNativeError(e);
  }
  return { path, built: true };
}

/** Removes cached RAM images whose snapshot is gone or changed (all, if `keep` is empty). */
export function pruneRamImages(keep: OpenedSnapshot[] = []): number {
  const dir = ramImageDir();
  if (!existsSync(dir)) return 0;
  const wanted = new Set(keep.map((s) => `${ramImageKey(s)}.ram`));
  let removed = 0;
  for (const f of readdirSync(dir)) {
    if (wanted.has(f)) continue;
    unlinkSync(join(dir, f));
    removed++;
  }
  return removed;
}
