/**
 * A streaming writer of the "newc" cpio format, the one Linux unpacks as an initramfs.
 * Owners, modes and device numbers are written straight into the headers, so building
 * an image's root filesystem needs neither root nor mknod on the host.
 */
import { VmrunError } from '../errors.js';
import type { FileMetadata } from '../oci/rootfs/entry.js';

/** The kinds of filesystem object a cpio entry can hold. */
export type CpioEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'socket';

/**
 * One filesystem object, as plain data. `path` is relative to the root (a leading
 * "/" or "./" is dropped); `mode` holds the permission bits (the type comes from
 * `type`); `mtime` is in seconds since the epoch; `size` is the content length of a
 * file (ignored for other types); `linkname` is a symlink's target or, for a
 * hardlink, the path of an earlier entry of this archive.
 */
export interface CpioEntry extends Omit<FileMetadata, 'xattrs'> {
  path: string;
  type: CpioEntryType;
  content?: AsyncIterable<Uint8Array> | Uint8Array;
}

/**
 * Reads back `length` bytes the writer already produced at archive offset `offset`.
 * A hardlink to a regular file needs it: newc puts the data on the last link.
 */
export type ArchiveReadBack = (offset: number, length: number) => AsyncIterable<Uint8Array>;

/** The kernel's limit (PATH_MAX, the terminating NUL included). */
export const CPIO_MAX_NAME_BYTES = 4096;
/** newc's size field holds 8 hex digits. */
export const CPIO_MAX_FILE_BYTES = 0xffff_ffff;

const MAGIC = '070701';
const TRAILER = 'TRAILER!!!';
const HEADER_BYTES = 110;
const MAX_FIELD = 0xffff_ffff;

const TYPE_BITS: Record<Exclude<CpioEntryType, 'hardlink'>, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
  socket: 0o140000,
};

/** The fields of one newc header, as numbers. */
export interface NewcHeaderFields {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  filesize: number;
  rdevmajor: number;
  rdevminor: number;
}

const encoder = new TextEncoder();

function padding(offset: number): number {
  return (4 - (offset % 4)) % 4;
}

function hex8(value: number, field: string, name: string): string {
  if (!Number.isInteger(value) || value < 0 || value > MAX_FIELD) {
    throw new VmrunError('image', `cpio entry "${name}": ${field} ${value} is outside 0..${MAX_FIELD}`);
  }
  return value.toString(16).padStart(8, '0');
}

/**
 * The header and NUL-terminated name of one member, padded so its data starts on a
 * 4-byte boundary (the header always starts on one, so padding depends only on the name).
 */
export function newcHeader(name: string, f: NewcHeaderFields): Uint8Array {
  const nameBytes = encoder.encode(name);
  if (nameBytes.length + 1 > CPIO_MAX_NAME_BYTES) {
    throw new VmrunError('image', `cpio entry name is ${nameBytes.length} bytes, over the ${CPIO_MAX_NAME_BYTES - 1}-byte limit: "${name.slice(0, 80)}..."`);
  }
  if (nameBytes.includes(0)) throw new VmrunError('image', `cpio entry name contains a NUL byte: ${JSON.stringify(name)}`);
  const text =
    MAGIC +
    hex8(f.ino, 'inode', name) +
    hex8(f.mode, 'mode', name) +
    hex8(f.uid, 'uid', name) +
    hex8(f.gid, 'gid', name) +
    hex8(f.nlink, 'nlink', name) +
    hex8(f.mtime, 'mtime', name) +
    hex8(f.filesize, 'size', name) +
    '00000000' + // devmajor of the filesystem holding the file: always 0
    '00000000' + // devminor
    hex8(f.rdevmajor, 'devmajor', name) +
    hex8(f.rdevminor, 'devminor', name) +
    hex8(nameBytes.length + 1, 'name size', name) +
    '00000000'; // check: unused by newc (070701)
  const out = new Uint8Array(HEADER_BYTES + nameBytes.length + 1 + padding(HEADER_BYTES + nameBytes.length + 1));
  encoder.encodeInto(text, out);
  out.set(nameBytes, HEADER_BYTES);
  return out;
}

/** The archive's closing member. */
export function newcTrailer(): Uint8Array {
  return newcHeader(TRAILER, { ino: 0, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, filesize: 0, rdevmajor: 0, rdevminor: 0 });
}

/** Zero bytes that bring `length` bytes of data up to a 4-byte boundary. */
export function newcDataPadding(length: number): Uint8Array {
  return new Uint8Array(padding(length));
}

/**
 * The archive member name for `path`: relative, without "./" or trailing "/", and with
 * no ".." or empty component (the root itself is ".").
 */
export function cpioMemberName(path: string): string {
  let name = path;
  while (name.startsWith('/') || name.startsWith('./')) name = name.startsWith('/') ? name.slice(1) : name.slice(2);
  name = name.replace(/\/+$/, '');
  if (name === '' || name === '.') return '.';
  const parts = name.split('/');
  if (parts.some((p) => p === '..' || p === '' || p === '.')) {
    throw new VmrunError('image', `cpio entry path ${JSON.stringify(path)} is not a clean path inside the root`);
  }
  return name;
}

/** Where a regular file's data went, so a later hardlink can repeat it as newc wants. */
interface WrittenFile {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  dataOffset: number;
  /** Set once a hardlink made the kernel register this inode (nlink >= 2). */
  linked: boolean;
}

/** What a non-file entry looked like, so a hardlink to it can be written as a copy. */
interface WrittenNode {
  entry: CpioEntry;
}

async function* contentChunks(entry: CpioEntry, name: string): AsyncGenerator<Uint8Array> {
  const content = entry.content ?? new Uint8Array(0);
  let written = 0;
  const chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = content instanceof Uint8Array ? [content] : content;
  for await (const chunk of chunks) {
    written += chunk.length;
    if (written > entry.size) break;
    yield chunk;
  }
  if (written !== entry.size) {
    throw new VmrunError('image', `cpio entry "${name}": content ${written > entry.size ? 'is longer than' : `has ${written} bytes, not`} its size ${entry.size}`);
  }
}

/**
 * Streams the newc archive of `entries` (in order), ending with the trailer.
 * Regular files are written with nlink 1; a hardlink to one (an entry whose
 * `linkname` names an earlier file) is written the way the kernel's unpacker links
 * files: the link, then the target again carrying the data (read back through
 * `readBack`), both with the target's inode and nlink 2; further links to it need
 * only a header. A hardlink to a non-file is written as a copy of that node.
 */
export async function* newcArchive(
  entries: AsyncIterable<CpioEntry> | Iterable<CpioEntry>,
  options: { readBack?: ArchiveReadBack } = {},
): AsyncGenerator<Uint8Array> {
  let offset = 0;
  let nextIno = 1;
  const files = new Map<string, WrittenFile>();
  const nodes = new Map<string, WrittenNode>();

  function* emit(bytes: Uint8Array): Generator<Uint8Array> {
    offset += bytes.length;
    yield bytes;
  }

  for await (const entry of entries) {
    const name = cpioMemberName(entry.path);
    if (entry.type === 'hardlink') {
      const targetName = cpioMemberName(entry.linkname ?? '');
      const file = files.get(targetName);
      if (file) {
        yield* writeFileLink(name, targetName, file);
        files.set(name, file);
        continue;
      }
      const node = nodes.get(targetName);
      if (!node) throw new VmrunError('image', `cpio hardlink "${name}" points to "${targetName}", which is not an earlier entry`);
      yield* writeEntry({ ...node.entry, path: name }, name);
      continue;
    }
    yield* writeEntry(entry, name);
  }
  yield* emit(newcTrailer());

  async function* writeEntry(entry: CpioEntry, name: string): AsyncGenerator<Uint8Array> {
    const typeBits = TYPE_BITS[entry.type as Exclude<CpioEntryType, 'hardlink'>];
    if (typeBits === undefined) throw new VmrunError('image', `cpio entry "${name}": unknown type ${JSON.stringify(entry.type)}`);
    const ino = nextIno++;
    const mode = typeBits | (entry.mode & 0o7777);
    const common = { ino, mode, uid: entry.uid, gid: entry.gid, mtime: clampMtime(entry.mtime), rdevmajor: 0, rdevminor: 0 };
    // A name written again replaces what was there (the kernel unlinks it), so
    // forget it as a hardlink target.
    files.delete(name);
    nodes.delete(name);
    switch (entry.type) {
      case 'file': {
        if (!Number.isSafeInteger(entry.size) || entry.size < 0 || entry.size > CPIO_MAX_FILE_BYTES) {
          throw new VmrunError('image', `cpio entry "${name}": size ${entry.size} is outside 0..${CPIO_MAX_FILE_BYTES} (4 GiB)`);
        }
        yield* emit(newcHeader(name, { ...common, nlink: 1, filesize: entry.size }));
        const dataOffset = offset;
        for await (const chunk of contentChunks(entry, name)) yield* emit(chunk);
        yield* emit(newcDataPadding(entry.size));
        files.set(name, { ino, mode, uid: entry.uid, gid: entry.gid, mtime: common.mtime, size: entry.size, dataOffset, linked: false });
        return;
      }
      case 'symlink': {
        if (!entry.linkname) throw new VmrunError('image', `cpio symlink "${name}" has no target`);
        const target = encoder.encode(entry.linkname);
        if (target.length + 1 > CPIO_MAX_NAME_BYTES) throw new VmrunError('image', `cpio symlink "${name}": target longer than ${CPIO_MAX_NAME_BYTES - 1} bytes`);
        yield* emit(newcHeader(name, { ...common, nlink: 1, filesize: target.length }));
        yield* emit(target);
        yield* emit(newcDataPadding(target.length));
        break;
      }
      case 'char':
      case 'block':
        yield* emit(newcHeader(name, { ...common, nlink: 1, filesize: 0, rdevmajor: entry.devmajor ?? 0, rdevminor: entry.devminor ?? 0 }));
        break;
      default: // dir, fifo, socket
        yield* emit(newcHeader(name, { ...common, nlink: entry.type === 'dir' ? 2 : 1, filesize: 0 }));
    }
    nodes.set(name, { entry });
  }

  async function* writeFileLink(name: string, targetName: string, file: WrittenFile): AsyncGenerator<Uint8Array> {
    const fields = { ino: file.ino, mode: file.mode, uid: file.uid, gid: file.gid, mtime: file.mtime, nlink: 2, rdevmajor: 0, rdevminor: 0 };
    yield* emit(newcHeader(name, { ...fields, filesize: 0 }));
    if (file.linked) return;
    // The kernel registered the inode under `name` just now; the target, written again
    // with the data, is re-created as a link to it and filled.
    if (!options.readBack) {
      throw new VmrunError('internal', `cpio hardlink "${name}" -> "${targetName}" needs an archive the writer can read back`);
    }
    const dataOffset = file.dataOffset;
    yield* emit(newcHeader(targetName, { ...fields, filesize: file.size }));
    file.dataOffset = offset;
    let copied = 0;
    for await (const chunk of options.readBack(dataOffset, file.size)) {
      copied += chunk.length;
      yield* emit(chunk);
    }
    if (copied !== file.size) throw new VmrunError('internal', `cpio read-back of "${targetName}" returned ${copied} of ${file.size} bytes`);
    yield* emit(newcDataPadding(file.size));
    file.linked = true;
  }
}

function clampMtime(mtime: number): number {
  if (!Number.isFinite(mtime) || mtime < 0) return 0;
  return Math.min(Math.floor(mtime), MAX_FIELD);
}
