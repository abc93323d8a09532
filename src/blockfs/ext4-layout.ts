/**
 * The on-disk structures of the ext4 subset vmrun writes for block root filesystems
 * (Linux Documentation/filesystems/ext4/, e2fsprogs lib/ext2fs/ext2_fs.h): 4 KiB
 * blocks, 256-byte inodes, extents, file types in directory entries, flex_bg (so
 * bitmaps and inode tables may sit after the data), sparse_super2 with no backups.
 * No journal, no checksums, no htree: the image is mounted read-only.
 */

export const BLOCK_SIZE = 4096;
export const LOG_BLOCK_SIZE = 2; // 1024 << 2
export const INODE_SIZE = 256;
/** Bytes of the inode past the 128-byte ext2 core that the kernel reads (nsec times, crtime). */
export const EXTRA_ISIZE = 32;
export const BLOCKS_PER_GROUP = 8 * BLOCK_SIZE;
export const MAX_INODES_PER_GROUP = 8 * BLOCK_SIZE;
export const INODES_PER_BLOCK = BLOCK_SIZE / INODE_SIZE;
export const GROUP_DESC_SIZE = 32;
export const ROOT_INO = 2;
export const FIRST_INO = 11;
/** Longest extent of initialized blocks. */
export const MAX_EXTENT_BLOCKS = 32768;
/** Extents in the inode's i_block (after the 12-byte header), and in a 4 KiB leaf block. */
export const INODE_EXTENTS = 4;
export const LEAF_EXTENTS = (BLOCK_SIZE - 12) / 12;
/** Fast symlinks keep their target in i_block. */
export const FAST_SYMLINK_MAX = 59;
export const MAX_NAME_BYTES = 255;

export const SUPERBLOCK_OFFSET = 1024;
export const EXT4_MAGIC = 0xef53;
export const EXTENT_MAGIC = 0xf30a;
export const XATTR_MAGIC = 0xea020000;

export const COMPAT_EXT_ATTR = 0x0008;
export const COMPAT_SPARSE_SUPER2 = 0x0200;
export const INCOMPAT_FILETYPE = 0x0002;
export const INCOMPAT_EXTENTS = 0x0040;
export const INCOMPAT_FLEX_BG = 0x0200;
export const RO_COMPAT_LARGE_FILE = 0x0002;
export const RO_COMPAT_DIR_NLINK = 0x0020;
export const RO_COMPAT_EXTRA_ISIZE = 0x0040;
export const DEFM_XATTR_USER = 0x0004;
export const LOG_GROUPS_PER_FLEX = 4;

export const INODE_FLAG_EXTENTS = 0x80000;

/** Inode mode type bits (S_IF*). */
export const MODE_TYPE = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  'char-device': 0o020000,
  'block-device': 0o060000,
  fifo: 0o010000,
} as const;

/** Directory entry file types (EXT4_FT_*). */
export const DIRENT_TYPE = {
  file: 1,
  directory: 2,
  'char-device': 3,
  'block-device': 4,
  fifo: 5,
  symlink: 7,
} as const;

export type InodeType = keyof typeof MODE_TYPE;

/** xattr name prefixes ext4 stores by index (fs/ext4/xattr.h); others are not kept. */
export const XATTR_PREFIX_INDEX: ReadonlyArray<readonly [string, number]> = [
  ['user.', 1],
  ['trusted.', 4],
  ['security.', 6],
];
