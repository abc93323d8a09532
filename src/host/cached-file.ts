/**
 * Files in vmrun's cache that are built once and then only read (image initramfs,
 * image disks): written to a temporary file beside their path, synced, and renamed
 * into place, so a failure or a concurrent build never leaves a partial file there.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/** `path` if it is an existing regular file, else undefined. */
export async function existingFile(path: string): Promise<string | undefined> {
  try {
    return (await stat(path)).isFile() ? path : undefined;
  } catch {
    return undefined;
  }
}

/** Builds `path` with `write` (given an empty file opened for reading and writing) unless it exists. */
export async function buildCachedFile(path: string, write: (handle: FileHandle) => Promise<void>): Promise<string> {
  if (await existingFile(path)) return path;
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temp, 'w+');
  try {
    await write(handle);
    await handle.sync();
    await handle.close();
    await rename(temp, path);
    return path;
  } catch (e) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw e;
  }
}
