/** Kinds of entries in an assembled root filesystem. */
export type RootfsEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char-device' | 'block-device' | 'fifo';

/**
 * The metadata every file-system object carries, whichever format holds it (a layer's
 * tar header, the assembled tree, the rootfs stream, a cpio header).
 */
export interface FileMetadata {
  /** Permission bits including setuid/setgid/sticky (0o7777 mask). */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time in whole seconds since the epoch. */
  mtime: number;
  /** Content length in bytes for `file`; 0 for every other type. */
  size: number;
  /** Symlink target (as written) or, for `hardlink`, the path of the entry it links to (emitted earlier). */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes from PAX `SCHILY.xattr.*` records; values are binary strings (one char per byte, 'latin1'). */
  xattrs?: Record<string, string>;
}

/**
 * One entry of a flattened image root filesystem: plain data, so writers (tar
 * export, the initramfs cpio writer) can depend on it without any tar library.
 * Ownership and modes are metadata only; nothing is chowned on the host.
 */
export interface RootfsEntry extends FileMetadata {
  /** Path relative to the root, `/`-separated, no leading `./` or `/` (e.g. `etc/passwd`). */
  path: string;
  type: RootfsEntryType;
}

/** An entry and, for a `file`, its content, which must be read (or is drained) before the next item. */
export interface RootfsItem {
  entry: RootfsEntry;
  content?: AsyncIterable<Uint8Array>;
}
