/**
 * Extended attributes in ext4's format (fs/ext4/xattr.c): entries sorted by (name
 * index, name length, name), values packed from the end of the space, kept in the
 * inode after its extra fields when they fit and in one attribute block otherwise.
 */
import { VmrunError } from '../errors.js';
import { BLOCK_SIZE, EXTRA_ISIZE, INODE_SIZE, XATTR_MAGIC, XATTR_PREFIX_INDEX } from './ext4-layout.js';

interface XattrEntry {
  index: number;
  name: Buffer;
  value: Buffer;
}

const ENTRY_HEADER = 16;
const BLOCK_HEADER = 32;
/** Room in the inode: after the 128-byte core, the extra fields and the 4-byte magic. */
const IBODY_ROOM = INODE_SIZE - 128 - EXTRA_ISIZE - 4;

const pad4 = (n: number) => (n + 3) & ~3;
const entrySize = (e: XattrEntry) => pad4(ENTRY_HEADER + e.name.length);

/**
 * The attributes ext4 can hold, sorted as ext4 searches them. Names outside user.,
 * trusted. and security. (system.* ACLs in a layer's own encoding) are not kept.
 * Values are binary strings (one char per byte), as the layer reader keeps them.
 */
export function xattrEntries(xattrs: Record<string, string> | undefined, where: string): XattrEntry[] {
  if (!xattrs) return [];
  const out: XattrEntry[] = [];
  for (const [full, value] of Object.entries(xattrs)) {
    const prefix = XATTR_PREFIX_INDEX.find(([p]) => full.startsWith(p));
    if (!prefix) continue;
    const name = Buffer.from(full.slice(prefix[0].length));
    if (name.length === 0 || name.length > 255) throw new VmrunError('image', `${where}: extended attribute name "${full.slice(0, 80)}" is empty or longer than 255 bytes`);
    out.push({ index: prefix[1], name, value: Buffer.from(value, 'latin1') });
  }
  return out.sort((a, b) => a.index - b.index || a.name.length - b.name.length || Buffer.compare(a.name, b.name));
}

/** ext4_xattr_hash_entry: the entry hash e2fsck and the kernel's block cache use. */
function entryHash(e: XattrEntry): number {
  let hash = 0;
  for (const c of e.name) hash = ((hash << 5) ^ (hash >>> 27) ^ c) >>> 0;
  const padded = Buffer.alloc(pad4(e.value.length));
  e.value.copy(padded);
  for (let i = 0; i < padded.length; i += 4) hash = ((hash << 16) ^ (hash >>> 16) ^ padded.readUInt32LE(i)) >>> 0;
  return hash;
}

/** Writes entries at `entriesAt` with values packed down from `end`; offsets are relative to `base`. */
function layOut(buf: Buffer, entries: XattrEntry[], entriesAt: number, end: number, base: number): number[] {
  let at = entriesAt;
  let valueAt = end;
  const hashes: number[] = [];
  for (const e of entries) {
    valueAt -= pad4(e.value.length);
    e.value.copy(buf, valueAt);
    const hash = entryHash(e);
    hashes.push(hash);
    buf.writeUInt8(e.name.length, at);
    buf.writeUInt8(e.index, at + 1);
    buf.writeUInt16LE(e.value.length === 0 ? 0 : valueAt - base, at + 2);
    buf.writeUInt32LE(0, at + 4); // e_value_inum
    buf.writeUInt32LE(e.value.length, at + 8);
    buf.writeUInt32LE(hash, at + 12);
    e.name.copy(buf, at + ENTRY_HEADER);
    at += entrySize(e);
  }
  return hashes; // a zero u32 after the last entry ends the list (buf starts zeroed)
}

function bytesNeeded(entries: XattrEntry[]): number {
  return entries.reduce((n, e) => n + entrySize(e) + pad4(e.value.length), 4);
}

/** The in-inode attribute area (magic + entries + values, from offset 128 + EXTRA_ISIZE), or undefined if they do not fit. */
export function ibodyXattrs(entries: XattrEntry[]): Buffer | undefined {
  if (entries.length === 0 || bytesNeeded(entries) > IBODY_ROOM) return undefined;
  const buf = Buffer.alloc(IBODY_ROOM + 4);
  buf.writeUInt32LE(XATTR_MAGIC, 0);
  // In the inode, value offsets count from the first entry.
  layOut(buf.subarray(4), entries, 0, IBODY_ROOM, 0);
  return buf;
}

/** One attribute block (refcount 1), or an error naming the file if the attributes exceed it. */
export function xattrBlock(entries: XattrEntry[], where: string): Buffer {
  if (bytesNeeded(entries) > BLOCK_SIZE - BLOCK_HEADER) {
    throw new VmrunError('image', `${where}: extended attributes take more than ${BLOCK_SIZE - BLOCK_HEADER} bytes, more than one ext4 attribute block holds`);
  }
  const buf = Buffer.alloc(BLOCK_SIZE);
  buf.writeUInt32LE(XATTR_MAGIC, 0);
  buf.writeUInt32LE(1, 4); // h_refcount
  buf.writeUInt32LE(1, 8); // h_blocks
  const hashes = layOut(buf, entries, BLOCK_HEADER, BLOCK_SIZE, 0);
  let blockHash = 0;
  for (const h of hashes) blockHash = ((blockHash << 16) ^ (blockHash >>> 16) ^ h) >>> 0;
  buf.writeUInt32LE(blockHash, 12);
  return buf;
}
