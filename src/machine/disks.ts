/**
 * Disks attached to a machine as virtio-blk devices (/dev/vda, /dev/vdb... in order).
 * The host file is used in place: never copied, never part of a snapshot.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { VmrunError } from '../errors.js';
import type { SnapshotDisk } from '../snapshot/metadata.js';

/** One disk: a raw image file, writable unless `readOnly`. */
export interface DiskOptions {
  path: string;
  readOnly?: boolean;
  /** What the guest reads as the disk's serial (/sys/block/vdX/serial), at most 20 bytes. */
  serial?: string;
}

/** The serial of the n-th user disk when none is given. */
export function defaultDiskSerial(index: number): string {
  return `vmrun-disk${index}`;
}

/** Parses `--disk FILE[:ro]` (a trailing `:rw` is accepted too; other colons belong to the path). */
export function parseDiskFlag(value: string): DiskOptions {
  const m = /^(.*):(ro|rw)$/.exec(value);
  const path = m ? m[1]! : value;
  if (path === '') throw new VmrunError('usage', `--disk "${value}": the file name is empty`);
  return { path: resolve(path), readOnly: m?.[2] === 'ro' };
}

/**
 * Checks that each disk is a regular file of at least one sector that vmrun can read
 * (and write, unless read-only): one clear error naming the file, before a VM exists.
 */
export function checkDisks(disks: readonly DiskOptions[]): number[] {
  const sizes: number[] = [];
  for (const d of disks) {
    let size: number;
    try {
      const st = statSync(d.path);
      if (!st.isFile()) throw new VmrunError('usage', `disk ${d.path} is not a regular file`);
      size = st.size;
      accessSync(d.path, d.readOnly ? constants.R_OK : constants.R_OK | constants.W_OK);
    } catch (e) {
      if (e instanceof VmrunError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new VmrunError('not-found', `disk ${d.path} does not exist`, { cause: e });
      throw new VmrunError('usage', `disk ${d.path} cannot be ${d.readOnly ? 'read' : 'read and written'} (${code ?? (e as Error).message}); add :ro for a read-only disk`, { cause: e });
    }
    if (size < 512) throw new VmrunError('usage', `disk ${d.path} is smaller than one 512-byte sector`);
    if (d.serial !== undefined && Buffer.byteLength(d.serial) > 20) throw new VmrunError('usage', `disk serial "${d.serial}" is longer than 20 bytes`);
    sizes.push(size);
  }
  return sizes;
}

/**
 * Checks a snapshot's disks before a restore: each file must exist with the size it
 * had at the save (the guest saw that capacity and has its blocks in its page cache).
 */
export function checkSnapshotDisks(disks: readonly SnapshotDisk[]): void {
  for (const d of disks) {
    let size: number;
    try {
      size = statSync(d.path).size;
    } catch (e) {
      throw new VmrunError('snapshot', `disk ${d.path} of the snapshot is missing (disk files are not part of a snapshot)`, { cause: e });
    }
    if (size !== d.bytes) throw new VmrunError('snapshot', `disk ${d.path} has ${size} bytes now; the snapshot was taken with ${d.bytes} (disk files are not part of a snapshot)`);
  }
  checkDisks(disks);
}
