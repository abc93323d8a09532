/**
 * The typed boundary to the C++ addon (native/binding). Every value that crosses it is
 * declared here; nothing else in src/ touches the addon directly.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VmrunError } from '../errors.js';

/** What the host's hypervisor offers (native HostReport). */
export interface NativeHostReport {
  backend: string;
  devicePath: string;
  apiVersion: number;
  cpuVendor: string;
  cpuModel: string;
  hardwareVirtualization: boolean;
  virtualizationKind: string;
  maxVcpus: number;
  recommendedVcpus: number;
  capabilities: Record<string, boolean>;
}

/** The machine description the addon boots (native MachineConfig). */
export interface NativeMachineConfig {
  kernel?: string;
  /** Linux initrd, or several concatenated in order (an image archive + a per-run archive). */
  initrd?: string | string[];
  cmdline?: string;
  memoryBytes: number;
  cpus: number;
  kvmDevice?: string;
  /** Recreate a saved machine instead of booting a kernel. */
  restore?: { ramImage: string; kernelFormat: string; state: NativeMachineState; catchUpClock?: boolean };
  /** Guest console bytes go straight to this fd (the CLI's terminal) instead of events. */
  consoleFd?: number;
  guestArgs?: string[];
  guestEnv?: string[];
  fileMappings?: string[];
  /** Hermit: load a relocatable kernel at a random address (default true, as uhyve). */
  aslr?: boolean;
}

/** Why a machine stopped (native StopRequest). */
export interface NativeStop {
  reason: 'reset' | 'poweroff' | 'exit-code' | 'triple-fault' | 'emulation-failure' | 'guest-error' | 'host-error' | 'killed';
  exitCode: number;
  vcpu: number;
  rip: bigint;
  detail: string;
  instruction: Buffer;
}

export interface NativeStats {
  exits: Record<string, number>;
  /** CLOCK_MONOTONIC ns when vCPU 0 first entered the guest (0n: not yet); compare with process.hrtime.bigint(). */
  firstEntryNs: bigint;
  /** How long each set-up step of this machine took, in ms (open-kvm, create-vm, memory-slots...). */
  setupMs: Record<string, number>;
  consoleBytes: number;
  runSeconds: number;
}

/** Captured state of a paused machine: VM-wide, per vCPU, per device (by name). */
export interface NativeMachineState {
  vm: Buffer;
  vcpus: Buffer[];
  devices: Record<string, Buffer>;
}

/** Byte offsets of the fields of one MEMORY_INDEX entry, and its size. */
export interface NativeMemoryIndexEntryLayout {
  bytes: number;
  ramOffset: number;
  dataOffset: number;
  compressedSize: number;
  pageCount: number;
  crc: number;
  bitmap: number;
}

export interface NativeLayout {
  memoryIndexEntry: NativeMemoryIndexEntryLayout;
  /** RAM covered by one MEMORY_INDEX entry (one zstd frame). */
  memoryChunkBytes: number;
  pageBytes: number;
}

export interface NativeLimits {
  minMemoryBytes: number;
  maxMemoryBytes: number;
  maxCpus: number;
}

/** Events, in the order the machine produced them: console batches, 'drained' after a pause, 'stopped' last. */
/** What saveSnapshot() hands back: state, the RAM chunk index, and timings. */
export interface NativeSnapshotCapture {
  state: NativeMachineState;
  /** MEMORY_INDEX entries (layout: addon().layout.memoryIndexEntry). */
  memoryIndex: Buffer;
  memoryDataLength: number;
  touchedPages: number;
  /** Guest stopped: state capture and copying its pages out. */
  pausedMs: number;
  /** Compressing and writing the pages. */
  writeMs: number;
}

export type NativeMachineEventKind = 'console' | 'drained' | 'stopped';

export interface NativeMachine {
  readonly kernelFormat: 'linux-bzimage' | 'linux-elf' | 'hermit';
  start(): void;
  /** Resolves true once every vCPU is parked, false on timeout. */
  pause(timeoutMs: number): Promise<boolean>;
  resume(): void;
  stop(): void;
  writeConsole(data: Uint8Array): void;
  stats(): NativeStats;
  captureState(): Promise<NativeMachineState>;
  /** Pauses, captures state and RAM (chunks written to fd at dataOffset), resumes unless `stop`. */
  saveSnapshot(opts: { fd: number; dataOffset: number; stop: boolean; level?: number }): Promise<NativeSnapshotCapture>;
  dispose(): void;
}

interface NativeAddon {
  hostReport(devicePath?: string): NativeHostReport;
  crc32c(bytes: Uint8Array): number;
  /** The kernel format of a file's bytes, detected as `vmrun boot` does. */
  kernelFormat(bytes: Uint8Array): 'linux-bzimage' | 'linux-elf' | 'hermit' | 'unknown';
  buildRamImage(snapshotPath: string, dataOffset: number, dataLength: number, index: Buffer, ramSize: number, imagePath: string): Promise<void>;
  /** The snapshot layout the addon writes (native/snapshot/memory_image.h). */
  layout: NativeLayout;
  /** The VMM's limits (native/vmm/builder.h, native/arch/x86_64/mptable.h). */
  limits: NativeLimits;
  /**
   * onEvent returns false for a 'console' batch it refuses (its reader is too far
   * behind): the addon counts those bytes as dropped and marks the gap in the output.
   * `mustKeep` is true for the final marker, which must be kept whatever the backlog.
   */
  NativeMachine: new (config: NativeMachineConfig, onEvent: (kind: string, payload: unknown, mustKeep?: boolean) => boolean | undefined) => NativeMachine;
}

let cached: NativeAddon | undefined;

/** Loads the addon once; a missing build is reported as what to run. */
export function addon(): NativeAddon {
  if (cached) return cached;
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const path = join(root, 'build', 'native', 'Release', 'vmrun_native.node');
  if (!existsSync(path)) {
    throw new VmrunError('internal', `the native addon is not built (${path} is missing): run npm run build:native`);
  }
  cached = createRequire(import.meta.url)(path) as NativeAddon;
  return cached;
}
