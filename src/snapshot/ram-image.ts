/**
 * The raw RAM image a restore maps copy-on-write: expanded once from a snapshot's zstd
 * chunks into the cache, then shared by every VM restored from that snapshot. It is
 * keyed by the snapshot file's identity (device, inode, size, mtime, header checksum),
 * so a changed file never reuses a stale image.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { addon } from '../native/addon.js';
import { vmrunCacheDir } from '../host/cache-dir.js';
import { processAlive } from '../host/process-alive.js';
import { VmrunError, fromNativeError } from '../errors.js';
import type { OpenedSnapshot } from './snapshot-file.js';

/** Where RAM images live. */
export function ramImageDir(): string {
  return join(vmrunCacheDir(), 'snapshots');
}

function ramImageKey(s: OpenedSnapshot): string {
  const id = `${s.file.dev}:${s.file.ino}:${s.file.size}:${s.file.mtimeNs}:${s.header.tableCrc}`;
  return createHash('sha256').update(id).digest('hex').slice(0, 32);
}

/** A builder's temp file: `KEY.ram.tmp-PID-RANDOM`, so a prune can tell whether its builder lives. */
const TEMP_FILE = /^[0-9a-f]{32}\.ram\.tmp-(\d+)-[0-9a-f]+$/;
/** Any other file (older vmrun's `KEY.ram.tmp-XXXXXX`) is removed once no build can still be writing it. */
const UNKNOWN_FILE_MAX_AGE_MS = 24 * 3600_000;

/**
 * Returns the path of the snapshot's RAM image, expanding (and verifying) it first if
 * needed. The file is opened once here and checked to be the one `s` validated (same
 * device, inode, size and mtime); the addon reads only through that descriptor.
 * Concurrent first restores (in this process or others) expand it once: the addon
 * builds under a lock file beside the image and skips the build if it finds the image.
 */
export async function ensureRamImage(s: OpenedSnapshot): Promise<{ path: string; built: boolean }> {
  const dir = ramImageDir();
  const key = ramImageKey(s);
  const path = join(dir, `${key}.ram`);
  if (existsSync(path)) return { path, built: false };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    fd = openSync(s.path, 'r');
  } catch (e) {
    throw new VmrunError('snapshot', `snapshot ${s.path}: cannot reopen it: ${(e as Error).message}`, { cause: e });
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    if (Number(st.dev) !== s.file.dev || Number(st.ino) !== s.file.ino || Number(st.size) !== s.file.size || st.mtimeNs !== s.file.mtimeNs) {
      throw new VmrunError('snapshot', `snapshot ${s.path} changed since it was opened (replaced, truncated or rewritten): open it again`);
    }
    const temp = join(dir, `${key}.ram.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    const built = await addon().buildRamImage(fd, s.path, s.memoryData.offset, s.memoryData.length, s.memoryIndex, s.metadata.machine.memoryBytes, temp, path);
    return { path, built };
  } catch (e) {
    throw fromNativeError(e);
  } finally {
    closeSync(fd);
  }
}

/**
 * Removes cached RAM images whose snapshot is gone or changed (all, if `keep` is
 * empty), and temp files of builders that died; a live builder's temp file is left.
 */
export function pruneRamImages(keep: OpenedSnapshot[] = []): number {
  const dir = ramImageDir();
  if (!existsSync(dir)) return 0;
  // An image's lock file goes with it (a builder waiting on a removed lock file locks a new one).
  const wanted = new Set(keep.flatMap((s) => [`${ramImageKey(s)}.ram`, `${ramImageKey(s)}.ram.lock`]));
  let removed = 0;
  for (const f of readdirSync(dir)) {
    if (wanted.has(f)) continue;
    const temp = TEMP_FILE.exec(f);
    if (temp && processAlive(Number(temp[1]))) continue;
    if (!temp && !f.endsWith('.ram') && !f.endsWith('.ram.lock') && !olderThan(join(dir, f), UNKNOWN_FILE_MAX_AGE_MS)) continue;
    try {
      unlinkSync(join(dir, f));
      removed++;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // removed by a concurrent prune
    }
  }
  return removed;
}

function olderThan(path: string, ms: number): boolean {
  const st = statSync(path, { throwIfNoEntry: false });
  return st !== undefined && Date.now() - st.mtimeMs > ms;
}
