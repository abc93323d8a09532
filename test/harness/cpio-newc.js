// @ts-check
/**
 * A writer for the "newc" cpio format the Linux kernel unpacks as an initramfs.
 * Written here rather than shelling out to cpio(1) so that device nodes
 * (/dev/console) can be put in the archive without root and without mknod.
 */

/**
 * One member of the archive. `mode` holds the file type bits and permissions
 * (e.g. 0o100755 for an executable file, 0o040755 for a directory, 0o020600 for a
 * character device); `data` is a file's content or a symlink's target.
 * @typedef {{ name: string, mode: number, data?: Buffer, rdevMajor?: number, rdevMinor?: number }} CpioEntry
 */

const NEWC_MAGIC = '070701';
const TRAILER_NAME = 'TRAILER!!!';
const S_IFMT = 0o170000;

/** File type bits, for building `mode` values. */
export const S_IFREG = 0o100000;
/** Directory type bits. */
export const S_IFDIR = 0o040000;
/** Character device type bits. */
export const S_IFCHR = 0o020000;
/** Symbolic link type bits. */
export const S_IFLNK = 0o120000;

/**
 * The archive holding `entries` in order, owned by root, followed by the trailer.
 * @param {CpioEntry[]} entries
 * @returns {Buffer}
 */
export function newcArchive(entries) {
  /** @type {Buffer[]} */
  const parts = [];
  let offset = 0;
  const push = (/** @type {Buffer} */ buf) => {
    parts.push(buf);
    offset += buf.length;
  };
  const pad = () => {
    const rest = (4 - (offset % 4)) % 4;
    if (rest) push(Buffer.alloc(rest));
  };
  let inode = 1;
  for (const entry of [...entries, { name: TRAILER_NAME, mode: 0 }]) {
    if (entry.name.startsWith('/') || entry.name.split('/').includes('..')) {
      throw new Error(`cpio member name must be relative and inside the archive: ${entry.name}`);
    }
    const data = entry.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${entry.name}\0`);
    const fields = [
      entry.name === TRAILER_NAME ? 0 : inode++, // ino
      entry.mode,
      0, // uid
      0, // gid
      (entry.mode & S_IFMT) === S_IFDIR ? 2 : 1, // nlink
      0, // mtime: fixed, so the same inputs give the same archive
      data.length,
      0, // devmajor
      0, // devminor
      entry.rdevMajor ?? 0,
      entry.rdevMinor ?? 0,
      name.length,
      0, // check (unused by newc)
    ];
    push(Buffer.from(NEWC_MAGIC + fields.map((f) => f.toString(16).padStart(8, '0')).join(''), 'ascii'));
    push(name);
    pad();
    if (data.length) {
      push(data);
      pad();
    }
  }
  return Buffer.concat(parts, offset);
}
