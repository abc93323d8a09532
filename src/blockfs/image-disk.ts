/**
 * The read-only disk an image boots from when its root filesystem is a block device:
 * an ext4 image of its flattened root filesystem, written once per image into a
 * cache and shared (read-only) by every run.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { VmrunError } from '../errors.js';
import { vmrunCacheDir } from '../host/cache-dir.js';
import { buildCachedFile, existingFile } from '../host/cached-file.js';
import type { RootfsItem } from '../oci/rootfs/entry.js';
import { writeExt4Image } from './ext4-image.js';

/** Bumped when the image layout changes, so old cache entries are not reused. */
const LAYOUT_VERSION = 1;

/** The serial (virtio-blk GET_ID) of the root disk; the guest's init finds its disk by it. */
export const ROOT_DISK_SERIAL = 'vmrun-rootfs';
/** The kernel cmdline argument that makes vmrun-init switch to the root disk. */
export const ROOT_DISK_CMDLINE = `vmrun.root=${ROOT_DISK_SERIAL}`;

/** The cache path of the disk image of the image with `imageDigest`. */
export function imageDiskCachePath(imageDigest: string, cacheDir = vmrunCacheDir()): string {
  if (!/^[a-z0-9]+:[a-f0-9]{32,}$/.test(imageDigest)) throw new VmrunError('usage', `image digest "${imageDigest}" is not of the form sha256:<hex>`);
  const id = createHash('sha256').update(`ext4-layout=${LAYOUT_VERSION}\0image=${imageDigest}`).digest('hex').slice(0, 32);
  return join(cacheDir, 'rootfs-disk', `${id}.ext4`);
}

/** The cached disk image, or undefined if it has not been built. */
export async function findCachedImageDisk(imageDigest: string, cacheDir?: string): Promise<string | undefined> {
  return existingFile(imageDiskCachePath(imageDigest, cacheDir));
}

/** Returns the cached disk image for `imageDigest`, building it from `items` if needed. */
export async function buildImageDisk(imageDigest: string, items: AsyncIterable<RootfsItem>, cacheDir?: string): Promise<string> {
  const uuid = createHash('sha256').update(imageDigest).digest().subarray(0, 16);
  return buildCachedFile(imageDiskCachePath(imageDigest, cacheDir), async (handle) => {
    await writeExt4Image(handle, items, uuid);
  });
}
