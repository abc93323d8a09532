/**
 * Writes a read-only ext4 file system from a flattened image root filesystem in one
 * pass and without root on the host: owners, modes, hard links, device nodes and
 * extended attributes are metadata written into the image, never applied to host
 * files. No Debian tool here takes a layer stream (erofs-utils 1.5 has no --tar,
 * e2fsprogs 1.47.0's mke2fs -d needs an unpacked directory, so owners and xattrs
 * would need root).
 *
 * Layout (block numbers): 0 superblock, 1.. group descriptors (room reserved for
 * MAX_IMAGE_BYTES), then file contents in stream order, each contiguous, with
 * symlink targets, attribute blocks and extent leaves beside them; then the
 * directories; then, as flex_bg allows, every group's bitmaps and inode table.
 * Only the start is written twice (superblock and descriptors, at the end).
 */
import type { FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import { VmrunError } from '../errors.js';
import { CoalescingWriter } from '../host/coalescing-writer.js';
import type { RootfsItem } from '../oci/rootfs/entry.js';
import {
  BLOCK_SIZE, BLOCKS_PER_GROUP, COMPAT_EXT_ATTR, COMPAT_SPARSE_SUPER2, DEFM_XATTR_USER, DIRENT_TYPE, EXT4_MAGIC, EXTENT_MAGIC,
  EXTRA_ISIZE, FAST_SYMLINK_MAX, FIRST_INO, GROUP_DESC_SIZE, INCOMPAT_EXTENTS, INCOMPAT_FILETYPE, INCOMPAT_FLEX_BG,
  INODE_EXTENTS, INODE_FLAG_EXTENTS, INODE_SIZE, INODES_PER_BLOCK, LEAF_EXTENTS, LOG_BLOCK_SIZE, LOG_GROUPS_PER_FLEX,
  MAX_EXTENT_BLOCKS, MAX_INODES_PER_GROUP, MAX_NAME_BYTES, MODE_TYPE, RO_COMPAT_DIR_NLINK, RO_COMPAT_EXTRA_ISIZE,
  RO_COMPAT_LARGE_FILE, ROOT_INO, SUPERBLOCK_OFFSET, type InodeType,
} from './ext4-layout.js';
import { ibodyXattrs, xattrBlock, xattrEntries } from './ext4-xattr.js';

/** Blocks kept for group descriptors: 4 blocks = 512 groups of 128 MiB. */
const GDT_RESERVED_BLOCKS = 4;
/** The largest image this writer makes. */
export const MAX_IMAGE_BYTES = GDT_RESERVED_BLOCKS * (BLOCK_SIZE / GROUP_DESC_SIZE) * BLOCKS_PER_GROUP * BLOCK_SIZE;
const MAX_LINKS = 65000;
const ZERO_BLOCK = Buffer.alloc(BLOCK_SIZE);

interface Extent {
  start: number;
  count: number;
}

interface InodeRecord {
  ino: number;
  type: InodeType;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** Bytes (files, slow symlinks, directories once written). */
  size: number;
  links: number;
  /** Data blocks, contiguous in the file's logical order. */
  extents: Extent[];
  /** Extent leaf blocks when the extents do not fit in the inode. */
  leaves: number[];
  xattrBlock?: number;
  ibodyXattrs?: Buffer;
  fastSymlink?: Buffer;
  devmajor?: number;
  devminor?: number;
  /** Directories: entries besides . and .., and the parent's inode. */
  children?: { name: Buffer; ino: number; type: InodeType }[];
  parent?: number;
}

/** What was written, for callers and tests. */
export interface Ext4ImageSummary {
  bytes: number;
  blocks: number;
  inodes: number;
  groups: number;
}

/** Splits `count` blocks from `start` into extents of at most MAX_EXTENT_BLOCKS. */
function extentsOf(start: number, count: number): Extent[] {
  const out: Extent[] = [];
  for (let done = 0; done < count; done += MAX_EXTENT_BLOCKS) out.push({ start: start + done, count: Math.min(MAX_EXTENT_BLOCKS, count - done) });
  return out;
}

function writeExtentHeader(buf: Buffer, at: number, entries: number, max: number, depth: number): void {
  buf.writeUInt16LE(EXTENT_MAGIC, at);
  buf.writeUInt16LE(entries, at + 2);
  buf.writeUInt16LE(max, at + 4);
  buf.writeUInt16LE(depth, at + 6);
  buf.writeUInt32LE(0, at + 8);
}

function writeLeafExtents(buf: Buffer, at: number, extents: Extent[], firstLogical: number): void {
  let logical = firstLogical;
  extents.forEach((e, i) => {
    const o = at + i * 12;
    buf.writeUInt32LE(logical, o);
    buf.writeUInt16LE(e.count, o + 4);
    buf.writeUInt16LE(Math.floor(e.start / 2 ** 32), o + 6);
    buf.writeUInt32LE(e.start >>> 0, o + 8);
    logical += e.count;
  });
}

/** Sets bits [from, to) of a bitmap. */
function setBits(bitmap: Buffer, from: number, to: number): void {
  for (let b = Math.max(0, from); b < to; b++) {
    if ((b & 7) === 0 && b + 8 <= to) {
      const end = Math.min(to, bitmap.length * 8) & ~7;
      bitmap.fill(0xff, b >> 3, end >> 3);
      b = end - 1;
      continue;
    }
    bitmap[b >> 3]! |= 1 << (b & 7);
  }
}

/** Seconds to ext4's 32-bit field plus the epoch bits of its _extra field (times up to 2446). */
function timeFields(seconds: number): { low: number; extra: number } {
  const low = seconds | 0;
  const epoch = Math.round((seconds - low) / 2 ** 32);
  return { low: low >>> 0, extra: epoch & 3 };
}

class Ext4Writer {
  private readonly out: CoalescingWriter;
  private block = 1 + GDT_RESERVED_BLOCKS;
  private readonly records: InodeRecord[] = [];
  private readonly byPath = new Map<string, InodeRecord>();
  private nextIno = FIRST_INO;

  constructor(private readonly handle: FileHandle) {
    this.out = new CoalescingWriter(handle);
    const root: InodeRecord = { ino: ROOT_INO, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0, links: 2, extents: [], leaves: [], children: [], parent: ROOT_INO };
    this.records.push(root);
    this.byPath.set('', root);
  }

  /** Block 0 and the descriptor blocks are written last; the data starts after them. */
  async reserveStart(): Promise<void> {
    await this.out.write(Buffer.alloc((1 + GDT_RESERVED_BLOCKS) * BLOCK_SIZE));
  }

  /** Appends blocks at the current end; returns the first block number. */
  private async append(bytes: Uint8Array): Promise<number> {
    const start = this.block;
    await this.out.write(bytes);
    const tail = bytes.length % BLOCK_SIZE;
    if (tail !== 0) await this.out.write(ZERO_BLOCK.subarray(tail));
    this.block += Math.ceil(bytes.length / BLOCK_SIZE);
    return start;
  }

  async add(item: RootfsItem): Promise<void> {
    const { entry } = item;
    const where = `image file "/${entry.path.slice(0, 200)}"`;
    const parentPath = posix.dirname(entry.path) === '.' ? '' : posix.dirname(entry.path);
    const parent = this.byPath.get(parentPath);
    if (!parent?.children) throw new VmrunError('image', `${where}: its directory was not listed before it`);
    const name = Buffer.from(posix.basename(entry.path));
    if (name.length === 0 || name.length > MAX_NAME_BYTES) throw new VmrunError('image', `${where}: a name of ${name.length} bytes does not fit ext4 (1-${MAX_NAME_BYTES})`);

    if (entry.type === 'hardlink') {
      const target = this.byPath.get(entry.linkname ?? '');
      if (!target || target.type === 'directory') throw new VmrunError('image', `${where}: hard link target "${entry.linkname}" was not written before it`);
      if (target.links >= MAX_LINKS) throw new VmrunError('image', `${where}: more than ${MAX_LINKS} hard links to one file`);
      target.links++;
      parent.children.push({ name, ino: target.ino, type: target.type });
      this.byPath.set(entry.path, target);
      return;
    }
    if (this.nextIno > 2 ** 32 - 1) throw new VmrunError('image', `${where}: too many files for one ext4 image`);
    const rec: InodeRecord = {
      ino: this.nextIno++, type: entry.type, mode: entry.mode & 0o7777, uid: entry.uid, gid: entry.gid, mtime: entry.mtime,
      size: 0, links: entry.type === 'directory' ? 2 : 1, extents: [], leaves: [],
    };
    this.records.push(rec);
    this.byPath.set(entry.path, rec);
    parent.children.push({ name, ino: rec.ino, type: rec.type });

    if (entry.type === 'directory') {
      rec.children = [];
      rec.parent = parent.ino;
      parent.links++;
    } else if (entry.type === 'file') {
      await this.addContent(rec, entry.size, item.content, where);
    } else if (entry.type === 'symlink') {
      const target = Buffer.from(entry.linkname ?? '');
      if (target.length === 0 || target.length >= BLOCK_SIZE) throw new VmrunError('image', `${where}: symlink target of ${target.length} bytes (1-${BLOCK_SIZE - 1})`);
      rec.size = target.length;
      if (target.length <= FAST_SYMLINK_MAX) rec.fastSymlink = target;
      else rec.extents = [{ start: await this.append(target), count: 1 }];
    } else {
      rec.devmajor = entry.devmajor ?? 0;
      rec.devminor = entry.devminor ?? 0;
    }
    const attrs = xattrEntries(entry.xattrs, where);
    if (attrs.length > 0) {
      rec.ibodyXattrs = ibodyXattrs(attrs);
      if (!rec.ibodyXattrs) rec.xattrBlock = await this.append(xattrBlock(attrs, where));
    }
  }

  private async addContent(rec: InodeRecord, size: number, content: AsyncIterable<Uint8Array> | undefined, where: string): Promise<void> {
    const start = this.block;
    let seen = 0;
    if (content) {
      for await (const chunk of content) {
        seen += chunk.length;
        if (seen > size) throw new VmrunError('image', `${where}: content is longer than the ${size} bytes its header says`);
        await this.out.write(chunk);
      }
    }
    if (seen !== size) throw new VmrunError('image', `${where}: content ended after ${seen} of ${size} bytes`);
    const tail = size % BLOCK_SIZE;
    if (tail !== 0) await this.out.write(ZERO_BLOCK.subarray(tail));
    const count = Math.ceil(size / BLOCK_SIZE);
    this.block += count;
    rec.size = size;
    rec.extents = extentsOf(start, count);
    await this.addLeaves(rec, where);
  }

  /** Writes extent leaf blocks for a file or directory whose extents do not fit in its inode. */
  private async addLeaves(rec: InodeRecord, where: string): Promise<void> {
    if (rec.extents.length <= INODE_EXTENTS) return;
    const leaves = Math.ceil(rec.extents.length / LEAF_EXTENTS);
    if (leaves > INODE_EXTENTS) throw new VmrunError('image', `${where}: ${rec.size} bytes is more than one ext4 file of this image can hold`);
    let logical = 0;
    for (let i = 0; i < leaves; i++) {
      const part = rec.extents.slice(i * LEAF_EXTENTS, (i + 1) * LEAF_EXTENTS);
      const leaf = Buffer.alloc(BLOCK_SIZE);
      writeExtentHeader(leaf, 0, part.length, LEAF_EXTENTS, 0);
      writeLeafExtents(leaf, 12, part, logical);
      logical += part.reduce((n, e) => n + e.count, 0);
      rec.leaves.push(await this.append(leaf));
    }
  }

  /** Directory blocks: ".", "..", then the children by name, no entry crossing a block. */
  private directoryBytes(rec: InodeRecord): Buffer {
    const entries = [
      { name: Buffer.from('.'), ino: rec.ino, type: 'directory' as InodeType },
      { name: Buffer.from('..'), ino: rec.parent!, type: 'directory' as InodeType },
      ...rec.children!.sort((a, b) => Buffer.compare(a.name, b.name)),
    ];
    const blocks: Buffer[] = [];
    let block = Buffer.alloc(BLOCK_SIZE);
    let at = 0;
    let last = -1;
    for (const e of entries) {
      const len = (8 + e.name.length + 3) & ~3;
      if (at + len > BLOCK_SIZE) {
        block.writeUInt16LE(BLOCK_SIZE - last, last + 4);
        blocks.push(block);
        block = Buffer.alloc(BLOCK_SIZE);
        at = 0;
      }
      block.writeUInt32LE(e.ino, at);
      block.writeUInt16LE(len, at + 4);
      block.writeUInt8(e.name.length, at + 6);
      block.writeUInt8(DIRENT_TYPE[e.type], at + 7);
      e.name.copy(block, at + 8);
      last = at;
      at += len;
    }
    block.writeUInt16LE(BLOCK_SIZE - last, last + 4);
    blocks.push(block);
    return Buffer.concat(blocks);
  }

  private encodeInode(rec: InodeRecord, into: Buffer, at: number): void {
    const b = into.subarray(at, at + INODE_SIZE);
    const dataBlocks = rec.extents.reduce((n, e) => n + e.count, 0) + rec.leaves.length + (rec.xattrBlock !== undefined ? 1 : 0);
    const t = timeFields(rec.mtime);
    b.writeUInt16LE(MODE_TYPE[rec.type] | rec.mode, 0);
    b.writeUInt16LE(rec.uid & 0xffff, 2);
    b.writeUInt32LE(rec.size % 2 ** 32, 4);
    for (const o of [8, 12, 16]) b.writeUInt32LE(t.low, o); // atime, ctime, mtime
    b.writeUInt16LE(rec.gid & 0xffff, 24);
    b.writeUInt16LE(rec.links > MAX_LINKS ? 1 : rec.links, 26);
    b.writeUInt32LE((dataBlocks * (BLOCK_SIZE / 512)) % 2 ** 32, 28);
    b.writeUInt32LE(Math.floor(rec.size / 2 ** 32), 108);
    b.writeUInt32LE(rec.xattrBlock ?? 0, 104);
    b.writeUInt16LE(Math.floor((dataBlocks * (BLOCK_SIZE / 512)) / 2 ** 32), 116);
    b.writeUInt16LE(rec.uid >>> 16, 120);
    b.writeUInt16LE(rec.gid >>> 16, 122);
    b.writeUInt16LE(EXTRA_ISIZE, 128);
    for (const o of [132, 136, 140, 148]) b.writeUInt32LE(t.extra, o); // ctime, mtime, atime, crtime _extra
    b.writeUInt32LE(t.low, 144); // crtime

    const iblock = 40;
    if (rec.type === 'char-device' || rec.type === 'block-device') {
      const major = rec.devmajor ?? 0;
      const minor = rec.devminor ?? 0;
      if (major < 256 && minor < 256) b.writeUInt32LE((major << 8) | minor, iblock);
      else b.writeUInt32LE(((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0, iblock + 4);
    } else if (rec.fastSymlink) {
      rec.fastSymlink.copy(b, iblock);
    } else if (rec.type === 'file' || rec.type === 'directory' || rec.type === 'symlink') {
      b.writeUInt32LE(INODE_FLAG_EXTENTS, 32);
      if (rec.leaves.length === 0) {
        writeExtentHeader(b, iblock, rec.extents.length, INODE_EXTENTS, 0);
        writeLeafExtents(b, iblock + 12, rec.extents, 0);
      } else {
        writeExtentHeader(b, iblock, rec.leaves.length, INODE_EXTENTS, 1);
        let logical = 0;
        rec.leaves.forEach((leaf, i) => {
          const o = iblock + 12 + i * 12;
          b.writeUInt32LE(logical, o);
          b.writeUInt32LE(leaf >>> 0, o + 4);
          b.writeUInt16LE(Math.floor(leaf / 2 ** 32), o + 8);
          logical += rec.extents.slice(i * LEAF_EXTENTS, (i + 1) * LEAF_EXTENTS).reduce((n, e) => n + e.count, 0);
        });
      }
    }
    if (rec.ibodyXattrs) rec.ibodyXattrs.copy(b, 128 + EXTRA_ISIZE);
  }

  /** Directories, then bitmaps and inode tables, then the superblock and descriptors. */
  async finish(uuid: Uint8Array): Promise<Ext4ImageSummary> {
    for (const rec of this.records) {
      if (rec.type !== 'directory') continue;
      const bytes = this.directoryBytes(rec);
      rec.size = bytes.length;
      rec.extents = extentsOf(await this.append(bytes), bytes.length / BLOCK_SIZE);
      await this.addLeaves(rec, `image directory ${rec.ino}`);
    }
    const dataEnd = this.block;
    const inodes = this.nextIno - 1;

    // Groups: enough for the blocks (data + this metadata) and the inodes.
    let groups = Math.max(1, Math.ceil(inodes / MAX_INODES_PER_GROUP));
    let perGroup = 0;
    let tableBlocks = 0;
    let used = 0;
    for (;;) {
      perGroup = Math.ceil(Math.ceil(inodes / groups) / INODES_PER_BLOCK) * INODES_PER_BLOCK;
      tableBlocks = perGroup / INODES_PER_BLOCK;
      used = dataEnd + groups * (2 + tableBlocks);
      const need = Math.ceil(used / BLOCKS_PER_GROUP);
      if (need <= groups) break;
      groups = need;
    }
    const blocks = Math.max(used, (groups - 1) * BLOCKS_PER_GROUP + 1);
    const gdtBlocks = Math.ceil((groups * GROUP_DESC_SIZE) / BLOCK_SIZE);
    if (gdtBlocks > GDT_RESERVED_BLOCKS || blocks * BLOCK_SIZE > MAX_IMAGE_BYTES) {
      throw new VmrunError('image', `the image's root filesystem needs ${Math.ceil((blocks * BLOCK_SIZE) / 2 ** 30)} GiB, more than the ${MAX_IMAGE_BYTES / 2 ** 30} GiB a block rootfs can be`);
    }
    const blockBitmapAt = dataEnd;
    const inodeBitmapAt = dataEnd + groups;
    const tablesAt = dataEnd + 2 * groups;
    const isUsed = (b: number) => b === 0 || (b >= 1 && b <= gdtBlocks) || (b > GDT_RESERVED_BLOCKS && b < used);

    const descs = Buffer.alloc(gdtBlocks * BLOCK_SIZE);
    let freeBlocks = 0;
    // Block bitmaps.
    const groupFree: number[] = [];
    for (let g = 0; g < groups; g++) {
      const bitmap = Buffer.alloc(BLOCK_SIZE);
      const first = g * BLOCKS_PER_GROUP;
      let free = 0;
      for (let i = 0; i < BLOCKS_PER_GROUP; i++) {
        const b = first + i;
        if (b >= blocks || isUsed(b)) bitmap[i >> 3]! |= 1 << (i & 7);
        else free++;
      }
      groupFree.push(free);
      freeBlocks += free;
      await this.out.write(bitmap);
    }
    // Inode bitmaps: inodes 1..`inodes` are in use; bits past the group's inodes are padding (set).
    for (let g = 0; g < groups; g++) {
      const bitmap = Buffer.alloc(BLOCK_SIZE);
      const first = g * perGroup + 1;
      setBits(bitmap, 0, Math.max(0, Math.min(perGroup, inodes - first + 1)));
      setBits(bitmap, perGroup, BLOCK_SIZE * 8);
      await this.out.write(bitmap);
    }
    // Inode tables.
    const recordsByGroup = new Map<number, InodeRecord[]>();
    for (const r of this.records) {
      const g = Math.floor((r.ino - 1) / perGroup);
      let list = recordsByGroup.get(g);
      if (!list) recordsByGroup.set(g, (list = []));
      list.push(r);
    }
    for (let g = 0; g < groups; g++) {
      const table = Buffer.alloc(tableBlocks * BLOCK_SIZE);
      const list = recordsByGroup.get(g) ?? [];
      for (const r of list) this.encodeInode(r, table, ((r.ino - 1) % perGroup) * INODE_SIZE);
      await this.out.write(table);
      const d = g * GROUP_DESC_SIZE;
      descs.writeUInt32LE(blockBitmapAt + g, d);
      descs.writeUInt32LE(inodeBitmapAt + g, d + 4);
      descs.writeUInt32LE(tablesAt + g * tableBlocks, d + 8);
      descs.writeUInt16LE(groupFree[g]!, d + 12);
      const usedInodes = Math.max(0, Math.min(perGroup, inodes - g * perGroup));
      descs.writeUInt16LE(perGroup - usedInodes, d + 14);
      descs.writeUInt16LE(list.filter((r) => r.type === 'directory').length, d + 16);
    }
    await this.out.flush();

    const sb = Buffer.alloc(1024);
    sb.writeUInt32LE(groups * perGroup, 0);
    sb.writeUInt32LE(blocks, 4);
    sb.writeUInt32LE(freeBlocks, 12);
    sb.writeUInt32LE(groups * perGroup - inodes, 16);
    sb.writeUInt32LE(0, 20); // s_first_data_block: 0 with 4 KiB blocks
    sb.writeUInt32LE(LOG_BLOCK_SIZE, 24);
    sb.writeUInt32LE(LOG_BLOCK_SIZE, 28);
    sb.writeUInt32LE(BLOCKS_PER_GROUP, 32);
    sb.writeUInt32LE(BLOCKS_PER_GROUP, 36);
    sb.writeUInt32LE(perGroup, 40);
    sb.writeUInt16LE(0xffff, 54); // s_max_mnt_count: -1, never force a check
    sb.writeUInt16LE(EXT4_MAGIC, 56);
    sb.writeUInt16LE(1, 58); // s_state: clean
    sb.writeUInt16LE(1, 60); // s_errors: continue
    sb.writeUInt32LE(1, 76); // s_rev_level: dynamic
    sb.writeUInt32LE(FIRST_INO, 84);
    sb.writeUInt16LE(INODE_SIZE, 88);
    sb.writeUInt32LE(COMPAT_EXT_ATTR | COMPAT_SPARSE_SUPER2, 92);
    sb.writeUInt32LE(INCOMPAT_FILETYPE | INCOMPAT_EXTENTS | INCOMPAT_FLEX_BG, 96);
    sb.writeUInt32LE(RO_COMPAT_LARGE_FILE | RO_COMPAT_DIR_NLINK | RO_COMPAT_EXTRA_ISIZE, 100);
    Buffer.from(uuid).copy(sb, 104, 0, 16);
    Buffer.from('vmrun-rootfs').copy(sb, 120);
    sb.writeUInt32LE(DEFM_XATTR_USER, 256);
    sb.writeUInt16LE(EXTRA_ISIZE, 348); // s_min_extra_isize
    sb.writeUInt16LE(EXTRA_ISIZE, 350); // s_want_extra_isize
    sb.writeUInt8(LOG_GROUPS_PER_FLEX, 372);
    // s_backup_bgs (588, 592) stay 0: sparse_super2 with no backup superblocks.
    await this.handle.write(sb, 0, sb.length, SUPERBLOCK_OFFSET);
    await this.handle.write(descs, 0, descs.length, BLOCK_SIZE);
    await this.handle.truncate(blocks * BLOCK_SIZE);
    return { bytes: blocks * BLOCK_SIZE, blocks, inodes, groups };
  }
}

/**
 * Writes the ext4 image of `items` (a flattened rootfs stream: parents before
 * children, hard links after their targets) into `handle`, an empty file opened for
 * writing. `uuid` (16 bytes) names the file system.
 */
export async function writeExt4Image(handle: FileHandle, items: AsyncIterable<RootfsItem>, uuid: Uint8Array): Promise<Ext4ImageSummary> {
  const writer = new Ext4Writer(handle);
  await writer.reserveStart();
  for await (const item of items) await writer.add(item);
  return writer.finish(uuid);
}
