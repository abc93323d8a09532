/**
 * Writing and reading whole snapshot files: the orchestration around format.ts. The
 * machine's own parts (vCPU, VM, device state, RAM chunks) come from the addon as
 * opaque blobs; this file only frames, checksums and validates them.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { addon, type NativeMachineState, type NativeSnapshotCapture } from '../native/addon.js';
import { VmrunError } from '../errors.js';
import {
  DATA_OFFSET, FLAG_CHECKSUMMED_PER_CHUNK, FORMAT_MAJOR, FORMAT_MINOR, HEADER_SIZE, LIMITS, SectionKind, TABLE_ENTRY_SIZE, decodeHeader, decodeTable, encodeHeader, encodeTable, sectionLabel,
  type Header, type SectionEntry,
} from './format.js';
import { decodeSnapshotMetadata, type SnapshotDisk, type SnapshotFileMapping, type SnapshotMetadata, type SnapshotVolume } from './metadata.js';

export type { NativeSnapshotCapture };

/** A snapshot file opened and fully validated, except RAM frames (checked when expanded). */
export interface OpenedSnapshot {
  path: string;
  header: Header;
  sections: SectionEntry[];
  metadata: SnapshotMetadata;
  state: NativeMachineState;
  memoryIndex: Buffer;
  memoryData: { offset: number; length: number };
  file: { dev: number; ino: number; size: number; mtimeNs: bigint };
}

const crc32c = (b: Uint8Array): number => addon().crc32c(b);

/**
 * Writes a snapshot to `path` via a temp file in the same directory, renamed only when
 * complete: a crash or failure leaves no partial file behind.
 */
export async function writeSnapshotFile(
  path: string,
  capture: (fd: number, dataOffset: number) => Promise<NativeSnapshotCapture>,
  metadataFor: (c: NativeSnapshotCapture) => SnapshotMetadata,
): Promise<{ capture: NativeSnapshotCapture; metadata: SnapshotMetadata; fileBytes: number }> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', 0o600);
  } catch (e) {
    throw new VmrunError('usage', `cannot write snapshot ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const c = await capture(fd, DATA_OFFSET);
    const metadata = metadataFor(c);
    const entries: SectionEntry[] = [
      { kind: SectionKind.MemoryData, index: 0, name: '', offset: DATA_OFFSET, length: c.memoryDataLength, crc: 0, flags: FLAG_CHECKSUMMED_PER_CHUNK },
    ];
    let pos = DATA_OFFSET + c.memoryDataLength;
    const append = (kind: SectionKind, index: number, name: string, bytes: Uint8Array): void => {
      writeAll(fd, bytes, pos);
      entries.push({ kind, index, name, offset: pos, length: bytes.length, crc: crc32c(bytes), flags: 0 });
      pos += bytes.length;
    };
    append(SectionKind.Metadata, 0, '', Buffer.from(JSON.stringify(metadata), 'utf8'));
    append(SectionKind.VmState, 0, '', c.state.vm);
    c.state.vcpus.forEach((blob, i) => append(SectionKind.VcpuState, i, '', blob));
    for (const [name, blob] of Object.entries(c.state.devices)) append(SectionKind.DeviceState, 0, name, blob);
    append(SectionKind.MemoryIndex, 0, '', c.memoryIndex);
    const table = encodeTable(entries);
    writeAll(fd, table, pos);
    const fileLength = pos + table.length;
    const header = encodeHeader(
      { major: FORMAT_MAJOR, minor: FORMAT_MINOR, sectionCount: entries.length, tableOffset: pos, fileLength, tableCrc: crc32c(table) },
      crc32c,
    );
    writeAll(fd, header, 0);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
    return { capture: c, metadata, fileBytes: fileLength };
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw e;
  }
}

/** Opens and validates a snapshot: header, table, every section's bounds and checksum, metadata. */
export function openSnapshotFile(path: string): OpenedSnapshot {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new VmrunError(code === 'ENOENT' ? 'not-found' : 'snapshot', `snapshot ${path}: ${code === 'ENOENT' ? 'does not exist' : (e as Error).message}`, { cause: e });
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    const size = Number(st.size);
    const head = readAt(fd, 0, Math.min(DATA_OFFSET, size));
    const header = decodeHeader(head, size, path, crc32c);
    // The padding between header and data is part of the file: it must be zero.
    if (head.subarray(HEADER_SIZE).some((b) => b !== 0)) bad(path, 'non-zero bytes in the header padding (the file is corrupt)');
    const sections = decodeTable(readAt(fd, header.tableOffset, header.sectionCount * TABLE_ENTRY_SIZE), header, path, crc32c);
    const one = (kind: SectionKind): SectionEntry => {
      const found = sections.filter((s) => s.kind === kind);
      if (found.length !== 1) bad(path, `expected one ${SectionKind[kind]} section, found ${found.length}`);
      return found[0]!;
    };
    const read = (e: SectionEntry, limit: number): Buffer => {
      if (e.length > limit) bad(path, `section ${sectionLabel(e)} is too large (${e.length} bytes)`);
      const b = readAt(fd, e.offset, e.length);
      if ((crc32c(b) >>> 0) !== e.crc) bad(path, `section ${sectionLabel(e)} checksum mismatch (the file is corrupt)`);
      return b;
    };
    const metadata = parseMetadata(read(one(SectionKind.Metadata), LIMITS.metadataBytes), path);
    const vm = read(one(SectionKind.VmState), LIMITS.stateBytes);
    const vcpuSections = sections.filter((s) => s.kind === SectionKind.VcpuState).sort((a, b) => a.index - b.index);
    if (vcpuSections.length !== metadata.machine.cpus || vcpuSections.some((s, i) => s.index !== i))
      bad(path, `expected ${metadata.machine.cpus} vCPU states numbered from 0`);
    const vcpus = vcpuSections.map((s) => read(s, LIMITS.stateBytes));
    const devices: Record<string, Buffer> = {};
    for (const s of sections.filter((x) => x.kind === SectionKind.DeviceState)) {
      if (s.name in devices) bad(path, `two states for device ${s.name}`);
      devices[s.name] = read(s, LIMITS.stateBytes);
    }
    const { memoryChunkBytes, memoryIndexEntry } = addon().layout;
    const maxChunks = Math.ceil(metadata.machine.memoryBytes / memoryChunkBytes);
    const memoryIndex = read(one(SectionKind.MemoryIndex), maxChunks * memoryIndexEntry.bytes);
    if (memoryIndex.length % memoryIndexEntry.bytes !== 0) bad(path, 'the memory index is not a whole number of entries');
    const data = one(SectionKind.MemoryData);
    if (data.offset !== DATA_OFFSET || !(data.flags & FLAG_CHECKSUMMED_PER_CHUNK)) bad(path, 'the memory data section is misplaced');
    return {
      path,
      header,
      sections,
      metadata,
      state: { vm, vcpus, devices },
      memoryIndex,
      memoryData: { offset: data.offset, length: data.length },
      file: { dev: Number(st.dev), ino: Number(st.ino), size, mtimeNs: st.mtimeNs },
    };
  } finally {
    closeSync(fd);
  }
}

function parseMetadata(bytes: Buffer, path: string): SnapshotMetadata {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    return bad(path, 'the metadata is not valid JSON');
  }
  const m = decodeSnapshotMetadata(doc, (why) => bad(path, why));
  const machine = m.machine;
  const { limits, layout } = addon();
  // Another architecture's machine: its vCPU and interrupt controller state mean nothing here.
  const type = machine.type ?? X86_64_MACHINE;
  if (type !== addon().machine.type) bad(path, `it holds an ${type} machine, and vmrun on this host runs ${addon().machine.type} machines`);
  const ok =
    // The VMM's own limits (exported by the addon), checked before any RAM image is
    // expanded: a crafted file must not make vmrun size a petabyte file.
    Number.isSafeInteger(machine.memoryBytes) &&
    machine.memoryBytes >= limits.minMemoryBytes &&
    machine.memoryBytes <= limits.maxMemoryBytes &&
    machine.memoryBytes % layout.memoryChunkBytes === 0 &&
    Number.isInteger(machine.cpus) &&
    machine.cpus >= 1 &&
    machine.cpus <= limits.maxCpus &&
    (machine.disks === undefined || validDisks(machine.disks, limits.virtioDevices)) &&
    (machine.volumes === undefined || validVolumes(machine.volumes, limits.virtioDevices)) &&
    (machine.fileMappings === undefined || validFileMappings(machine.fileMappings, machine.kernelFormat)) &&
    (machine.vsock === undefined || validVsockCid(machine.vsock.cid));
  if (!ok) bad(path, 'the metadata does not describe a machine');
  return m;
}

/** The machine type of snapshots saved before the metadata named one (vmrun ran x86_64 guests only). */
const X86_64_MACHINE = 'x86_64-pc';

/** Disks a snapshot can record (paths and serials are used as they are, so shape-checked). */
function validDisks(disks: unknown, maxDevices: number): boolean {
  return (
    Array.isArray(disks) &&
    disks.length <= maxDevices &&
    disks.every(
      (d: Partial<SnapshotDisk> | null) =>
        typeof d?.path === 'string' && d.path.startsWith('/') && typeof d.readOnly === 'boolean' &&
        typeof d.serial === 'string' && Buffer.byteLength(d.serial) <= 20 && Number.isSafeInteger(d.bytes) && d.bytes! >= 512,
    )
  );
}

/** Volumes a snapshot can record: absolute host and guest paths, no more than a VM's virtio devices. */
function validVolumes(volumes: SnapshotVolume[], maxDevices: number): boolean {
  return volumes.length <= maxDevices && volumes.every((v) => v.hostDir.startsWith('/') && v.guestDir.startsWith('/') && !v.hostDir.includes('\0'));
}

/** More file mappings than any Hermit guest is booted with: a bound on what a crafted file makes a restore open. */
const MAX_FILE_MAPPINGS = 256;

/** A Hermit guest's file mappings: absolute paths, a host path the native HOST:GUEST form can carry. */
function validFileMappings(mappings: SnapshotFileMapping[], kernelFormat: string): boolean {
  const path = (p: string): boolean => p.startsWith('/') && !p.includes('\0');
  return (
    kernelFormat === 'hermit' &&
    mappings.length <= MAX_FILE_MAPPINGS &&
    mappings.every((m) => path(m.hostPath) && path(m.guestPath) && !m.hostPath.includes(':'))
  );
}

/** A saved vsock CID within the addon's limits (the device refuses others). */
function validVsockCid(cid: unknown): boolean {
  const { minCid, maxCid } = addon().vsockLimits;
  return Number.isInteger(cid) && (cid as number) >= minCid && (cid as number) <= maxCid;
}

function bad(path: string, what: string): never {
  throw new VmrunError('snapshot', `snapshot ${path}: ${what}`);
}

function readAt(fd: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, b, done, length - done, offset + done);
    if (n === 0) throw new VmrunError('snapshot', 'snapshot: unexpected end of file');
    done += n;
  }
  return b;
}

function writeAll(fd: number, bytes: Uint8Array, offset: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, offset + done);
}

