/**
 * Whether an image boots from an initramfs (its whole tree in guest RAM, no extended
 * attributes) or from a read-only ext4 disk with a tmpfs overlay: large images and
 * images whose files carry extended attributes (file capabilities) need the disk.
 */
import { VmrunError } from '../errors.js';
import type { RootfsTree } from '../oci/rootfs/rootfs-tree.js';

/** `vmrun run --rootfs`: auto picks by size and attributes. */
export type RootfsMode = 'auto' | 'initramfs' | 'block';
export const ROOTFS_MODES: readonly RootfsMode[] = ['auto', 'initramfs', 'block'];

/**
 * File content above which `auto` picks the disk: an initramfs is in guest RAM twice
 * while it unpacks (archive + tmpfs), and the default guest has 256 MiB.
 */
export const BLOCK_ROOTFS_MIN_BYTES = 64 << 20;

/** What decides the choice, read from the flattened tree (no layer content is read). */
export interface RootfsFacts {
  contentBytes: number;
  hasXattrs: boolean;
}

export function rootfsFacts(tree: RootfsTree): RootfsFacts {
  let contentBytes = 0;
  let hasXattrs = false;
  const seen = new Set<object>();
  for (const { node } of tree.walk()) {
    if (seen.has(node.inode)) continue;
    seen.add(node.inode);
    contentBytes += node.inode.size;
    if (node.inode.xattrs && Object.keys(node.inode.xattrs).length > 0) hasXattrs = true;
  }
  return { contentBytes, hasXattrs };
}

/** The root filesystem a run gets. */
export function chooseRootfs(mode: RootfsMode, facts: RootfsFacts): 'initramfs' | 'block' {
  if (!ROOTFS_MODES.includes(mode)) throw new VmrunError('usage', `--rootfs "${mode}" is not one of ${ROOTFS_MODES.join(', ')}`);
  if (mode !== 'auto') return mode;
  return facts.hasXattrs || facts.contentBytes > BLOCK_ROOTFS_MIN_BYTES ? 'block' : 'initramfs';
}
