/**
 * The vmrun snapshot file format (version 2.0; 2.0 gave every device state a named,
 * versioned record per field, which 1.x readers cannot decode). One file:
 *
 *   [0, 64)        header: magic "VMRUNSNP", major/minor version, section count,
 *                  table offset, file length, CRC-32C of the table, CRC-32C of the header
 *   [64, 4096)     zero padding (checked), so RAM data starts page-aligned
 *   [4096, ...)    MEMORY_DATA: independently decompressible zstd frames, one per chunk
 *                  of RAM holding non-zero pages (checksummed per frame in MEMORY_INDEX)
 *   then           METADATA (JSON), VM_STATE, VCPU_STATE x cpus, DEVICE_STATE x devices,
 *                  MEMORY_INDEX (fixed-size entries whose layout the addon exports:
 *                  addon().layout, from native/snapshot/memory_image.h)
 *   then           the section table (64-byte entries), each with its own CRC-32C
 *
 * Everything read from a file is bounded before allocation: a snapshot is untrusted.
 */
import { VmrunError } from '../errors.js';

export const MAGIC = Buffer.from('VMRUNSNP', 'ascii');
export const FORMAT_MAJOR = 2;
export const FORMAT_MINOR = 0;
export const HEADER_SIZE = 64;
export const DATA_OFFSET = 4096;
export const TABLE_ENTRY_SIZE = 64;

/** Upper bounds checked before any allocation. */
export const LIMITS = {
  sections: 1024,
  metadataBytes: 1 << 20,
  stateBytes: 16 << 20,
  nameBytes: 16,
} as const;

export enum SectionKind {
  Metadata = 1,
  VmState = 2,
  VcpuState = 3,
  DeviceState = 4,
  MemoryIndex = 5,
  MemoryData = 6,
}

/** The MEMORY_DATA section is checked frame by frame (flag), not as a whole. */
export const FLAG_CHECKSUMMED_PER_CHUNK = 1;

export interface SectionEntry {
  kind: SectionKind;
  index: number;
  name: string;
  offset: number;
  length: number;
  crc: number;
  flags: number;
}

export interface Header {
  major: number;
  minor: number;
  sectionCount: number;
  tableOffset: number;
  fileLength: number;
  tableCrc: number;
}

export type Crc32c = (bytes: Uint8Array) => number;

const fail = (file: string, what: string): never => {
  throw new VmrunError('snapshot', `snapshot ${file}: ${what}`);
};

export function encodeHeader(h: Header, crc32c: Crc32c): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(b, 0);
  b.writeUInt16LE(h.major, 8);
  b.writeUInt16LE(h.minor, 10);
  b.writeUInt32LE(h.sectionCount, 12);
  b.writeBigUInt64LE(BigInt(h.tableOffset), 16);
  b.writeBigUInt64LE(BigInt(h.fileLength), 24);
  b.writeUInt32LE(h.tableCrc >>> 0, 32);
  b.writeUInt32LE(crc32c(b.subarray(0, 36)) >>> 0, 36);
  return b;
}

/** Parses and checks the header against the real file size; `file` names it in errors. */
export function decodeHeader(b: Buffer, fileSize: number, file: string, crc32c: Crc32c): Header {
  if (fileSize < DATA_OFFSET || b.length < HEADER_SIZE) fail(file, `truncated (${fileSize} bytes is shorter than any snapshot)`);
  if (!b.subarray(0, 8).equals(MAGIC)) fail(file, 'not a vmrun snapshot (bad magic)');
  const major = b.readUInt16LE(8);
  const minor = b.readUInt16LE(10);
  if (major > FORMAT_MAJOR) fail(file, `format version ${major}.${minor} is newer than this vmrun supports (${FORMAT_MAJOR}.x): upgrade vmrun`);
  if (major < FORMAT_MAJOR) fail(file, `format version ${major}.${minor} is older than this vmrun supports (${FORMAT_MAJOR}.x): its device state cannot be read; save the machine again with this vmrun`);
  if ((crc32c(b.subarray(0, 36)) >>> 0) !== b.readUInt32LE(36)) fail(file, 'header checksum mismatch (the file is corrupt)');
  const header: Header = {
    major,
    minor,
    sectionCount: b.readUInt32LE(12),
    tableOffset: Number(b.readBigUInt64LE(16)),
    fileLength: Number(b.readBigUInt64LE(24)),
    tableCrc: b.readUInt32LE(32),
  };
  if (header.fileLength !== fileSize)
    fail(file, `truncated or extended: the header says ${header.fileLength} bytes, the file has ${fileSize}`);
  if (header.sectionCount === 0 || header.sectionCount > LIMITS.sections) fail(file, `bad section count ${header.sectionCount}`);
  const tableEnd = header.tableOffset + header.sectionCount * TABLE_ENTRY_SIZE;
  if (header.tableOffset < DATA_OFFSET || tableEnd > fileSize) fail(file, 'the section table lies outside the file');
  return header;
}

export function encodeTable(entries: SectionEntry[]): Buffer {
  const b = Buffer.alloc(entries.length * TABLE_ENTRY_SIZE);
  entries.forEach((e, i) => {
    const o = i * TABLE_ENTRY_SIZE;
    b.writeUInt32LE(e.kind, o);
    b.writeUInt32LE(e.index, o + 4);
    const name = Buffer.from(e.name, 'utf8');
    if (name.length > LIMITS.nameBytes) throw new VmrunError('internal', `section name too long: ${e.name}`);
    name.copy(b, o + 8);
    b.writeBigUInt64LE(BigInt(e.offset), o + 24);
    b.writeBigUInt64LE(BigInt(e.length), o + 32);
    b.writeUInt32LE(e.crc >>> 0, o + 40);
    b.writeUInt32LE(e.flags, o + 44);
  });
  return b;
}

/** Parses the table and checks every section lies inside the file, after the padding, without overlap. */
export function decodeTable(b: Buffer, header: Header, file: string, crc32c: Crc32c): SectionEntry[] {
  if ((crc32c(b) >>> 0) !== header.tableCrc) fail(file, 'section table checksum mismatch (the file is corrupt)');
  const entries: SectionEntry[] = [];
  for (let i = 0; i < header.sectionCount; i++) {
    const o = i * TABLE_ENTRY_SIZE;
    const raw = b.subarray(o + 8, o + 24);
    const end = raw.indexOf(0);
    const e: SectionEntry = {
      kind: b.readUInt32LE(o),
      index: b.readUInt32LE(o + 4),
      name: raw.subarray(0, end < 0 ? raw.length : end).toString('utf8'),
      offset: Number(b.readBigUInt64LE(o + 24)),
      length: Number(b.readBigUInt64LE(o + 32)),
      crc: b.readUInt32LE(o + 40),
      flags: b.readUInt32LE(o + 44),
    };
    if (!(e.kind in SectionKind)) fail(file, `section ${i} has an unknown kind ${e.kind}`);
    if (e.offset < DATA_OFFSET || e.offset + e.length > header.tableOffset) fail(file, `section ${i} (${SectionKind[e.kind]}) lies outside the file's data area`);
    entries.push(e);
  }
  const sorted = [...entries].sort((a, b2) => a.offset - b2.offset);
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i]!.offset < sorted[i - 1]!.offset + sorted[i - 1]!.length) fail(file, 'two sections overlap');
  return entries;
}

/** Names a section for error messages: "VCPU_STATE 1", "DEVICE_STATE uart0". */
export function sectionLabel(e: SectionEntry): string {
  const kind = SectionKind[e.kind]!.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
  if (e.kind === SectionKind.VcpuState) return `${kind} ${e.index}`;
  if (e.kind === SectionKind.DeviceState) return `${kind} ${e.name}`;
  return kind;
}
