/**
 * Adapts the OCI library's flattened root filesystem (src/oci/rootfs) to cpio entries.
 */
import type { RootfsEntryType, RootfsItem } from '../oci/rootfs/entry.js';
import type { CpioEntry, CpioEntryType } from './cpio-newc.js';

const CPIO_TYPE: Record<RootfsEntryType, CpioEntryType> = {
  file: 'file',
  directory: 'dir',
  symlink: 'symlink',
  hardlink: 'hardlink',
  'char-device': 'char',
  'block-device': 'block',
  fifo: 'fifo',
};

/**
 * The cpio entries of an image's root filesystem, in the stream's order (parents
 * first, hardlinks after their targets, as streamRootfs guarantees). Extended
 * attributes are dropped: newc cannot carry them.
 */
export async function* cpioEntriesOfRootfs(items: AsyncIterable<RootfsItem>): AsyncGenerator<CpioEntry> {
  for await (const { entry, content } of items) {
    const out: CpioEntry = {
      path: entry.path,
      type: CPIO_TYPE[entry.type],
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      mtime: entry.mtime,
      size: entry.size,
    };
    if (entry.linkname !== undefined) out.linkname = entry.linkname;
    if (entry.devmajor !== undefined) out.devmajor = entry.devmajor;
    if (entry.devminor !== undefined) out.devminor = entry.devminor;
    if (content) out.content = content;
    yield out;
  }
}
