/**
 * The typed boundary to the C++ addon (native/binding). Every value that crosses it is
 * declared here; nothing else in src/ touches the addon directly.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VmrunError } from '../errors.js';
import { ELF_MACHINE_BY_NODE_ARCH, elfMachine } from './elf-machine.js';
import type { PortMapping } from '../network/publish.js';

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
  /** How a snapshot restore sets the guest's clock here, where the backend has more than one way (arm64). */
  guestClockRestore?: 'KVM_ARM_SET_COUNTER_OFFSET' | 'KVM_REG_ARM_TIMER_CNT';
}

/** A virtio-blk disk (native DiskConfig): a raw file, used in place. */
export interface NativeDiskConfig {
  path: string;
  readOnly: boolean;
  /** GET_ID's answer, at most 20 bytes. */
  serial: string;
}

/** A virtio-fs volume (native VolumeConfig): virtiofsd serves `hostDir` under `tag`. */
export interface NativeVolumeConfig {
  tag: string;
  hostDir: string;
  readOnly: boolean;
  /** The virtiofsd binary to start. */
  virtiofsd: string;
}

/** A virtio-vsock device (native VsockConfig): the guest's CID and the VM's host unix socket ('' = none). */
export interface NativeVsockConfig {
  cid: number;
  socketPath: string;
}

/** The limits the addon enforces on vsock (native/devices/virtio/vsock/vsock_device.h). */
export interface NativeVsockLimits {
  minCid: number;
  maxCid: number;
  /** The socket path leaves room for "_<port>" inside a unix socket address. */
  maxSocketPathBytes: number;
  maxConnections: number;
  /** Per-connection buffer the device advertises to the guest (buf_alloc). */
  bufferBytes: number;
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
  restore?: {
    ramImage: string;
    kernelFormat: string;
    state: NativeMachineState;
    catchUpClock?: boolean;
    /** A saved network device gets this MAC (each restored clone its own). */
    networkMac?: string;
    /** A saved network device publishes these ports instead of the saved ones. */
    networkPublish?: NativePortForward[];
  };
  /** Guest console bytes go straight to this fd (the CLI's terminal) instead of events. */
  consoleFd?: number;
  guestArgs?: string[];
  guestEnv?: string[];
  fileMappings?: string[];
  /** Hermit: load a relocatable kernel at a random address (default true, as uhyve). */
  aslr?: boolean;
  /** A virtio-net device on the user-mode network; absent: no network device. */
  network?: NativeNetworkConfig;
  /** virtio-blk disks, in order (/dev/vda...); for a restore, the saved machine's. */
  disks?: NativeDiskConfig[];
  /** virtio-fs volumes (boot only: VMs with volumes are not saved); guest RAM is then a shared memfd. */
  volumes?: NativeVolumeConfig[];
  /** A virtio-vsock device; the addon announces it on the Linux command line itself. */
  vsock?: NativeVsockConfig;
  /** Hermit: trace the boot handover (boot info, arguments and environment) on stderr. */
  debug?: boolean;
  /** Host input is attached from the start (see Machine.setConsoleInputOpen). */
  consoleInput?: boolean;
  /** A gdb stub listening there (boot only); the vCPUs wait at their first instruction. */
  gdb?: { host: string; port: number };
}

/** A published port as the addon takes it (native PortForward). */
export type NativePortForward = PortMapping;

/** The user-mode network of a machine (native NetworkConfig). */
export interface NativeNetworkConfig {
  mode: 'user' | 'host-loopback';
  /** "02:xx:xx:xx:xx:xx": chosen by the host per VM. */
  mac: string;
  publish?: NativePortForward[];
  /** Relay the guest's DNS queries to this host resolver. */
  dns?: { ip: string; port: number };
}

/** The addresses every guest's network has (native default_guest_addresses). */
export interface NativeGuestNetwork {
  guest: string;
  prefix: number;
  /** The host: connections to it reach the host's 127.0.0.1. */
  gateway: string;
  nameserver: string;
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
  /** Per virtio device (by name): how often the guest made it need a reset, and the last reason. */
  virtio: Record<string, { needsReset: number; lastReason: string }>;
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
  /** Virtio devices a VM can have (MMIO slots): vsock, network, disks and volumes together. */
  virtioDevices: number;
}

/** The machine the addon builds (native vmm/platform.h). */
export interface NativeMachineType {
  type: 'x86_64-pc' | 'arm64-virt';
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

/** The host address range of a machine's guest RAM (native GuestMemory's one mapping). */
export interface NativeRamMapping {
  address: bigint;
  bytes: number;
}

export interface NativeMachine {
  readonly kernelFormat: 'linux-bzimage' | 'linux-elf' | 'hermit' | 'linux-arm64-image';
  start(): void;
  /** Resolves true once every vCPU is parked, false on timeout. */
  pause(timeoutMs: number): Promise<boolean>;
  resume(): void;
  stop(): void;
  writeConsole(data: Uint8Array): void;
  /** Whether host input is attached (Hermit guests' reads of fd 0 wait for it while it is). */
  setConsoleInputOpen(open: boolean): void;
  stats(): NativeStats;
  /** The ports the network device publishes (empty without one). */
  ports(): NativePortForward[];
  /** "HOST:PORT" of the gdb stub, "" without one. */
  gdbAddress(): string;
  /** Where guest RAM is mapped in this process: one mapping (file-backed after a restore). */
  guestRamMapping(): NativeRamMapping;
  captureState(): Promise<NativeMachineState>;
  /** Pauses, captures state and RAM (chunks written to fd at dataOffset), resumes unless `stop`. */
  saveSnapshot(opts: { fd: number; dataOffset: number; stop: boolean; level?: number }): Promise<NativeSnapshotCapture>;
  dispose(): void;
}

interface NativeAddon {
  hostReport(devicePath?: string): NativeHostReport;
  crc32c(bytes: Uint8Array): number;
  /** The kernel format of a file's bytes, detected as `vmrun boot` does. */
  kernelFormat(bytes: Uint8Array): 'linux-bzimage' | 'linux-elf' | 'hermit' | 'linux-arm64-image' | 'unknown';
  /**
   * Expands RAM chunks read through `snapshotFd` (kept open until it settles) into `tempPath`, renamed to
   * `imagePath`, under an flock on `imagePath.lock`; false when another builder had put it in place.
   */
  buildRamImage(
    snapshotFd: number,
    snapshotName: string,
    dataOffset: number,
    dataLength: number,
    index: Buffer,
    ramSize: number,
    tempPath: string,
    imagePath: string,
  ): Promise<boolean>;
  /** The snapshot layout the addon writes (native/snapshot/memory_image.h). */
  layout: NativeLayout;
  /** The VMM's limits for this architecture's machine (native/vmm/builder.h, native/vmm/platform.h). */
  limits: NativeLimits;
  /** The machine this addon builds: snapshots record its type, and a restore of another is refused. */
  machine: NativeMachineType;
  /** Bounds on the private files a Hermit guest creates (native/hypercalls/guest_files.h). */
  hermitTempFileLimits: { files: number; fileBytes: number; totalBytes: number; snapshotBytes: number };
  guestNetwork: NativeGuestNetwork;
  vsockLimits: NativeVsockLimits;
  /** The command line vmrun starts virtiofsd with (socket as fd 3) for a read-write volume. */
  virtiofsdArguments(virtiofsd: string, hostDir: string): string[];
  /**
   * onEvent returns false for a 'console' batch it refuses (its reader is too far
   * behind): the addon counts those bytes as dropped and marks the gap in the output.
   * `mustKeep` is true for the final marker, which must be kept whatever the backlog.
   */
  NativeMachine: new (config: NativeMachineConfig, onEvent: (kind: string, payload: unknown, mustKeep?: boolean) => boolean | undefined) => NativeMachine;
}

/**
 * Where the addon may be built: cmake-js's build for the host it ran on
 * (`npm run build:native`), and the arm64 cross-build (scripts/build-arm64-addon.sh),
 * which the aarch64 harness's L1 loads from a checkout an x86_64 host built. The one
 * whose ELF header is this process's architecture is loaded; the host's own first.
 */
const ADDON_BUILDS: readonly string[][] = [
  ['build', 'native', 'Release', 'vmrun_native.node'],
  ['build', 'arm64', 'addon', 'vmrun_native.node'],
];

/** The addon build under `root` for Node architecture `arch`, or a one-line error saying how to build it. */
export function findAddonBuild(root: string, arch: string = process.arch): string {
  const machine = ELF_MACHINE_BY_NODE_ARCH[arch];
  if (machine === undefined) throw new VmrunError('host', `vmrun runs on x86_64 and arm64 hosts; this one is ${arch}`);
  for (const parts of ADDON_BUILDS) {
    const path = join(root, ...parts);
    if (existsSync(path) && elfMachine(path) === machine) return path;
  }
  const how = arch === 'arm64' ? 'npm run build:native on this host, or cross-build it with sh scripts/build-arm64-addon.sh' : 'npm run build:native';
  throw new VmrunError('internal', `the native addon is not built for ${arch} (none in ${join(root, 'build')}): run ${how}`);
}

let cached: NativeAddon | undefined;

/** Loads the addon for this host's architecture once; a missing build is reported as what to run. */
export function addon(): NativeAddon {
  if (cached) return cached;
  const path = findAddonBuild(join(dirname(fileURLToPath(import.meta.url)), '..', '..'));
  cached = createRequire(import.meta.url)(path) as NativeAddon;
  return cached;
}
