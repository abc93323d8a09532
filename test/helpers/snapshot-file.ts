import { readFileSync, writeFileSync } from 'node:fs';
import { addon } from '../../src/native/addon.js';
import {
  HEADER_SIZE, TABLE_ENTRY_SIZE, decodeHeader, decodeTable, encodeHeader, encodeTable, type SectionEntry,
} from '../../src/snapshot/format.js';

const crc32c = (b: Uint8Array) => addon().crc32c(b);

/** The section table of a snapshot file, for tests that damage or rewrite sections. */
export function readSections(path: string): SectionEntry[] {
  const file = readFileSync(path);
  const header = decodeHeader(file.subarray(0, HEADER_SIZE), file.length, path, crc32c);
  return decodeTable(file.subarray(header.tableOffset, header.tableOffset + header.sectionCount * TABLE_ENTRY_SIZE), header, path, crc32c);
}

/**
 * Rewrites one section's bytes in place (same length) and fixes every checksum, so
 * the file is well-formed and only its content says something new.
 */
export function rewriteSection(src: string, dst: string, pick: (e: SectionEntry) => boolean, mutate: (bytes: Buffer) => void): void {
  const file = Buffer.from(readFileSync(src));
  const header = decodeHeader(file.subarray(0, HEADER_SIZE), file.length, src, crc32c);
  const entries = decodeTable(file.subarray(header.tableOffset, header.tableOffset + header.sectionCount * TABLE_ENTRY_SIZE), header, src, crc32c);
  const e = entries.find(pick);
  if (!e) throw new Error('no such section');
  const bytes = file.subarray(e.offset, e.offset + e.length);
  mutate(bytes);
  e.crc = crc32c(bytes);
  const table = encodeTable(entries);
  table.copy(file, header.tableOffset);
  encodeHeader({ ...header, tableCrc: crc32c(table) }, crc32c).copy(file, 0);
  writeFileSync(dst, file);
}

/** Rewrites the header's version (with a valid header checksum). */
export function rewriteVersion(src: string, dst: string, major: number, minor: number): void {
  const file = Buffer.from(readFileSync(src));
  const header = decodeHeader(file.subarray(0, HEADER_SIZE), file.length, src, crc32c);
  encodeHeader({ ...header, major, minor }, crc32c).copy(file, 0);
  writeFileSync(dst, file);
}

/** Walks a native state blob (u32 version, then u32 tag, u32 length, bytes) to a record. */
export function stateRecord(blob: Buffer, tag: number): Buffer {
  let pos = 4;
  while (pos + 8 <= blob.length) {
    const t = blob.readUInt32LE(pos);
    const len = blob.readUInt32LE(pos + 4);
    if (t === tag) return blob.subarray(pos + 8, pos + 8 + len);
    pos += 8 + len;
  }
  throw new Error(`no record ${tag}`);
}
