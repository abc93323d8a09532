/**
 * Snapshots as the library offers them: save a machine, open (validate) a file,
 * describe it. The file format is format.ts; framing and validation snapshot-file.ts.
 */
import { cpus as hostCpus } from 'node:os';
import { createRequire } from 'node:module';
import { writeSnapshotFile, openSnapshotFile, type NativeSnapshotCapture, type OpenedSnapshot } from './snapshot-file.js';
import { FORMAT_MAJOR, FORMAT_MINOR } from './format.js';
import { addon } from '../native/addon.js';
import type { SnapshotMetadata } from './metadata.js';


/** What a save reports. */
export interface SaveResult {
  path: string;
  fileBytes: number;
  metadata: SnapshotMetadata;
  /** How long the guest was stopped (state capture and copying its pages out). */
  pausedMs: number;
  /** Compressing and writing, while the guest ran on. */
  writeMs: number;
}

/** A validated snapshot and what it describes. */
export interface SnapshotInfo {
  path: string;
  metadata: SnapshotMetadata;
  opened: OpenedSnapshot;
}

/** The machine facts a snapshot records. */
export type SnapshotIdentity = SnapshotMetadata['machine'];

let version: string | undefined;
function vmrunVersion(): string {
  version ??= (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  return version;
}

/** Saves a machine through its native capture function. */
export async function saveMachineSnapshot(
  path: string,
  m: { identity: SnapshotIdentity; capture: (fd: number, dataOffset: number) => Promise<NativeSnapshotCapture> },
): Promise<SaveResult> {
  const cpu = hostCpus()[0];
  const { capture, metadata, fileBytes } = await writeSnapshotFile(path, m.capture, (c) => {
    const { memoryIndexEntry: entry, pageBytes } = addon().layout;
    const chunks = c.memoryIndex.length / entry.bytes;
    let savedPages = 0;
    for (let i = 0; i < chunks; i++) savedPages += c.memoryIndex.readUInt32LE(i * entry.bytes + entry.pageCount);
    return {
      format: 'vmrun-snapshot',
      formatVersion: `${FORMAT_MAJOR}.${FORMAT_MINOR}`,
      vmrunVersion: vmrunVersion(),
      created: new Date().toISOString(),
      machine: { type: addon().machine.type, ...m.identity },
      host: { cpuModel: cpu?.model ?? 'unknown', cpuVendor: process.arch, virtualization: 'kvm' },
      ram: { touchedBytes: c.touchedPages * pageBytes, savedBytes: savedPages * pageBytes, compressedBytes: c.memoryDataLength, chunks },
      timings: { pausedMs: round(c.pausedMs), writeMs: round(c.writeMs) },
    };
  });
  return { path, fileBytes, metadata, pausedMs: capture.pausedMs, writeMs: capture.writeMs };
}

/** Opens a snapshot and validates everything but its RAM frames (checked when expanded). */
export function openSnapshot(path: string): SnapshotInfo {
  const opened = openSnapshotFile(path);
  return { path, metadata: opened.metadata, opened };
}

const round = (x: number): number => Math.round(x * 1000) / 1000;
