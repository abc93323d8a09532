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

/** Well-formed metadata for a 32 MiB, 1-vCPU machine (what saveMachineSnapshot writes). */
export function sampleMetadata(): Record<string, unknown> {
  return {
    format: 'vmrun-snapshot',
    formatVersion: '1.0',
    vmrunVersion: '0.1.0',
    created: '2026-12-03T12:00:00.000Z',
    machine: { memoryBytes: 32 * 2 ** 20, cpus: 1, kernelFormat: 'linux-elf', kernel: '/k.elf', cmdline: '' },
    host: { cpuModel: 'test', cpuVendor: 'x64', virtualization: 'kvm' },
    ram: { touchedBytes: 0, savedBytes: 0, compressedBytes: 0, chunks: 0 },
    timings: { pausedMs: 0, writeMs: 0 },
  };
}

/**
 * Writes a snapshot file without a machine (no /dev/kvm needed): the real writer
 * (writeSnapshotFile) framing the given metadata, small opaque state blobs, and RAM
 * given as MEMORY_INDEX entries plus the MEMORY_DATA bytes they point into.
 */
export async function writeSyntheticSnapshot(
  path: string,
  metadata: unknown,
  ram: { index: Buffer; data: Buffer } = { index: Buffer.alloc(0), data: Buffer.alloc(0) },
): Promise<void> {
  const { writeSnapshotFile } = await import('../../src/snapshot/snapshot-file.js');
  const cpus = (metadata as { machine?: { cpus?: unknown } }).machine?.cpus;
  const count = typeof cpus === 'number' && cpus >= 1 && cpus <= 32 ? cpus : 1;
  await writeSnapshotFile(
    path,
    async (fd, dataOffset) => {
      const { writeSync } = await import('node:fs');
      if (ram.data.length > 0) writeSync(fd, ram.data, 0, ram.data.length, dataOffset);
      return {
        state: { vm: Buffer.from('vm'), vcpus: Array.from({ length: count }, () => Buffer.from('vcpu')), devices: { uart0: Buffer.from('uart') } },
        memoryIndex: ram.index,
        memoryDataLength: ram.data.length,
        touchedPages: 0,
        pausedMs: 0,
        writeMs: 0,
      };
    },
    () => metadata as never,
  );
}
