import { EventEmitter } from 'node:events';
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import {
  addon, type NativeMachine, type NativeMachineConfig, type NativeMachineState, type NativeStats, type NativeStop, type NativeVsockLimits,
} from '../native/addon.js';
import { fromNativeError, VmrunError } from '../errors.js';
import { parseSize } from '../units.js';
import { describeExit, type MachineExit } from './exit.js';
import { saveMachineSnapshot, openSnapshot, type SaveResult, type SnapshotInfo } from '../snapshot/snapshot.js';
import { ensureRamImage } from '../snapshot/ram-image.js';
import { nativeNetworkConfig, savedNetwork, type SavedNetwork } from '../network/native-config.js';
import type { NetworkOptions } from '../network/options.js';
import type { PortMapping } from '../network/publish.js';
// Only the dialer and the client: the tar helpers (and their modules) stay out of every machine's start.
import { waitForAgent } from '../agent/dial.js';
import type { AgentClient, ExecOptions, GuestProcess } from '../agent/client.js';
import type { SnapshotDisk, SnapshotFileMapping, SnapshotVolume } from '../snapshot/metadata.js';
import { checkDisks, checkSnapshotDisks, defaultDiskSerial, type DiskOptions } from './disks.js';
import { chooseCloneIdentity, type CloneIdentity } from './clone-identity.js';
import { guestRamMemory, type GuestRamMemory } from '../host/process-memory.js';
import { checkVolumes, findVirtiofsd, volumeTag, type VolumeOptions } from './volumes.js';
import { checkGdbOptions, type GdbOptions } from './gdb.js';

/** How to boot a kernel directly (vmrun boot, and the layers above it). */
export interface BootOptions {
  /** Path of a Linux bzImage or vmlinux ELF, or a Hermit kernel (detected from the file). */
  kernel: string;
  /** Linux initrd, or several concatenated in order (an image archive + a per-run archive). */
  initrd?: string | string[];
  /** Linux kernel command line. */
  cmdline?: string;
  /** Guest RAM: bytes, or a size like "256M". Default 256M. */
  memory?: number | string;
  cpus?: number;
  /** The KVM device (default /dev/kvm). */
  kvmDevice?: string;
  /** Where guest console output goes: the `output` stream (default) or straight to an fd. */
  consoleFd?: number;
  /** Hermit: application arguments, environment (K=V) and file mappings (host:guest). */
  guestArgs?: string[];
  guestEnv?: string[];
  fileMappings?: string[];
  /** Hermit: load a relocatable kernel at a random address (default true, as uhyve). */
  aslr?: boolean;
  /** Hermit: trace the boot handover (boot info, the arguments and environment the guest received) on stderr. */
  debug?: boolean;
  /**
   * Host input will be attached to the console from the start (an interactive run): a
   * Hermit guest reading standard input waits for it instead of seeing end of input.
   */
  consoleInput?: boolean;
  /** The OCI image this machine runs, recorded in its snapshots. */
  image?: string;
  /**
   * A virtio-net device on the user-mode network (docs/networking.md). Default: none
   * for a direct boot (runImage turns it on). The guest configures eth0 itself.
   */
  network?: NetworkOptions;
  /** Raw disk files as virtio-blk devices, /dev/vda... in order (Linux guests). */
  disks?: DiskOptions[];
  /**
   * Host directories shared live with the guest over virtio-fs (Linux guests), tagged
   * vmrun0, vmrun1... in order (see volumeTag); the guest mounts them itself (vmrun run's
   * init does). A machine with volumes is saved through its guest agent (vsock), which
   * unmounts them for the save and mounts them again after (docs/snapshots.md).
   */
  volumes?: VolumeOptions[];
  /** A virtio-vsock device (Linux guests): see docs/virtio.md for the socket protocol. */
  vsock?: VsockOptions;
  /** Unread `output` kept before further console output is dropped (default 8 MiB; docs/console-output.md). */
  outputBufferBytes?: number;
  /**
   * A gdb remote stub on this TCP address (docs/gdb.md): every vCPU waits at its first
   * instruction until a debugger attaches and continues; `gdbAddress` says where.
   */
  gdb?: GdbOptions;
}

/**
 * The VM's vsock device. The host reaches the guest by connecting to `socketPath` and
 * writing `CONNECT <port>\n` (answered `OK <hostport>\n`); the guest reaches the host
 * at CID 2 port P through a unix socket the host listens on at `<socketPath>_<P>`.
 */
export interface VsockOptions {
  /** The guest's context ID (see `vsockLimits()`; 3 is the usual choice). */
  cid: number;
  /** Where the VM listens; created by the VM, removed when it ends. */
  socketPath: string;
}

/** The vsock limits the native addon enforces (CID range, socket path length...). */
export function vsockLimits(): NativeVsockLimits {
  return addon().vsockLimits;
}

/** How to restore a snapshot. */
export interface RestoreOptions {
  kvmDevice?: string;
  /** Jump the guest clock forward by the time since the save (default: continue from the save). */
  catchUpClock?: boolean;
  consoleFd?: number;
  /** Publish these ports instead of the ones saved with the snapshot (to run two clones at once). */
  publish?: PortMapping[];
  /**
   * For a snapshot of a VM with vsock: where the restored VM listens (connections from
   * before the save were reset) and optionally its CID (else `identity`'s, else a fresh
   * one). An error for a snapshot without a vsock device; without it such a device is
   * restored with no host socket.
   */
  vsock?: Partial<VsockOptions> & { socketPath: string };
  /** Fixes parts of the restored VM's identity (MAC, CID, hostname); the rest is drawn fresh. */
  identity?: Partial<CloneIdentity>;
  /** As BootOptions.outputBufferBytes. */
  outputBufferBytes?: number;
}

/** How to restore one snapshot several times at once: what RestoreOptions says, per clone where it differs. */
export interface RestoreManyOptions extends Omit<RestoreOptions, 'vsock' | 'identity' | 'publish'> {
  /** Where clone `i` (0-based) serves its vsock device (a snapshot with one); default: no host socket. */
  vsockSocketPath?: (i: number) => string;
  /** Fixes parts of clone `i`'s identity; the rest is drawn fresh, CIDs distinct across the clones. */
  identity?: (i: number) => Partial<CloneIdentity>;
  /** Ports clone `i` publishes (host ports must differ between clones). Default: none, not the saved ones. */
  publish?: (i: number) => PortMapping[];
}

/** What Machine.fork made: the snapshot the clones were restored from, and the clones. */
export interface ForkResult {
  snapshot: SaveResult;
  clones: Machine[];
}

/** Where a machine's memory goes: its guest RAM mapping, as this process's smaps counts it. */
export interface MachineMemory {
  guestRam: GuestRamMemory;
}

export const DEFAULT_MEMORY = '256M';
/** How long a save or a restore waits for the guest agent that unmounts and mounts volumes. */
const VOLUME_AGENT_TIMEOUT_MS = 10_000;
/** Unread console output a Machine keeps by default before it drops (and counts) the rest. */
export const DEFAULT_OUTPUT_BUFFER_BYTES = 8 * 1024 * 1024;

/** What a Machine remembers about itself for snapshots. */
interface MachineIdentity {
  memoryBytes: number;
  cpus: number;
  kernel?: string;
  cmdline?: string;
  image?: string;
  disks?: SnapshotDisk[];
  /** Its volumes, if any: a restore serves the same host directories again. */
  volumes?: SnapshotVolume[];
  /** The vsock device's CID, if the machine has one (its socket path is not part of a snapshot). */
  vsock?: { cid: number };
  /** The network device's set-up, if the machine has one (a restored clone gets its own MAC). */
  network?: SavedNetwork;
  /** A Hermit guest's file mappings: a restore reopens its files through them. */
  fileMappings?: SnapshotFileMapping[];
}

/**
 * A virtual machine run by vmrun. Guest console output is `output` (unless sent to an
 * fd); `wait()` resolves when the guest ends. Controls never block the event loop:
 * vCPUs run on their own threads and every exit is handled natively.
 */
export class Machine extends EventEmitter {
  /** Guest console output. Ends when the machine stops. */
  readonly output: Readable;
  readonly kernelFormat: NativeMachine['kernelFormat'];
  /** The machine's vsock device as configured (socketPath '' when it has no host socket). */
  readonly vsock: VsockOptions | undefined;
  /** The network device's MAC (each restored clone draws its own); undefined without one. */
  readonly mac: string | undefined;
  private readonly native: NativeMachine;
  private readonly outputStream = new PassThrough();
  private readonly exited: Promise<MachineExit>;
  private readonly drainWaiters: Array<() => void> = [];
  private readonly consoleToEvents: boolean;
  private killedExitCode = 125;
  private finalStats: NativeStats | undefined;
  private disposed = false;
  /** The host side of the vsock device, where the guest agent is reached. */
  private vsockSocketPath: string | undefined;
  private restoredIdentity: CloneIdentity | undefined;
  /** A socket directory the machine made for itself (a restore with volumes and no vsock path given). */
  private privateSocket: PrivateSocket | undefined;
  private agentConnection: Promise<AgentClient> | undefined;

  private constructor(config: NativeMachineConfig, readonly identity: MachineIdentity, outputBufferBytes = DEFAULT_OUTPUT_BUFFER_BYTES) {
    super();
    this.output = this.outputStream;
    this.consoleToEvents = config.consoleFd === undefined;
    let resolveExit!: (e: MachineExit) => void;
    this.exited = new Promise((r) => (resolveExit = r));
    const onEvent = (kind: string, payload: unknown, mustKeep?: boolean): boolean | undefined => {
      if (kind === 'console') {
        // Output nobody reads is not kept without bound: refused, the addon drops and
        // counts it, and a marker takes its place in what is read later.
        if (!mustKeep && this.outputStream.writableLength + this.outputStream.readableLength >= outputBufferBytes) return false;
        this.outputStream.write(payload as Buffer);
        return true;
      } else if (kind === 'drained') {
        this.drainWaiters.shift()?.();
      } else if (kind === 'stopped') {
        this.finalStats = this.native.stats();
        const exit = describeExit(payload as NativeStop, {
          shutdownIsNormal: this.kernelFormat === 'hermit',
          killedExitCode: this.killedExitCode,
        });
        this.outputStream.end();
        resolveExit(exit);
        this.emit('exit', exit);
      }
      return undefined;
    };
    try {
      this.native = new (addon().NativeMachine)(config, onEvent);
    } catch (e) {
      throw fromNativeError(e);
    }
    this.kernelFormat = this.native.kernelFormat;
    this.vsock = config.vsock ? { cid: config.vsock.cid, socketPath: config.vsock.socketPath } : undefined;
    this.mac = config.network?.mac;
  }

  /** A restored machine's own identity (MAC and CID as its devices hold them); undefined for a booted one. */
  get cloneIdentity(): CloneIdentity | undefined {
    return this.restoredIdentity;
  }

  /** Loads the kernel into a new VM and starts its vCPUs. */
  static boot(options: BootOptions): Machine {
    const memoryBytes = typeof options.memory === 'number' ? options.memory : parseSize(options.memory ?? DEFAULT_MEMORY, '--memory');
    const cpus = options.cpus ?? 1;
    const gdb = options.gdb === undefined ? undefined : checkGdbOptions(options.gdb);
    const network = options.network ? nativeNetworkConfig(options.network) : undefined;
    const disks = (options.disks ?? []).map((d, i) => ({ path: d.path, readOnly: d.readOnly === true, serial: d.serial ?? defaultDiskSerial(i) }));
    const sizes = checkDisks(disks);
    const volumes = checkVolumes(options.volumes ?? []);
    const fileMappings = (options.fileMappings ?? []).map(splitFileMapping);
    const m = new Machine(
      {
        kernel: options.kernel,
        initrd: options.initrd,
        cmdline: options.cmdline ?? '',
        memoryBytes,
        cpus,
        kvmDevice: options.kvmDevice,
        consoleFd: options.consoleFd,
        guestArgs: options.guestArgs,
        guestEnv: options.guestEnv,
        fileMappings: options.fileMappings,
        aslr: options.aslr,
        consoleInput: options.consoleInput,
        debug: options.debug,
        gdb,
        network,
        vsock: options.vsock ? { cid: options.vsock.cid, socketPath: options.vsock.socketPath } : undefined,
        ...(disks.length > 0 ? { disks } : {}),
        ...(volumes.length > 0 ? { volumes: nativeVolumes(volumes) } : {}),
      },
      {
        memoryBytes, cpus, kernel: options.kernel, cmdline: options.cmdline, image: options.image,
        ...(volumes.length > 0 ? { volumes } : {}),
        ...(fileMappings.length > 0 ? { fileMappings } : {}),
        vsock: options.vsock ? { cid: options.vsock.cid } : undefined,
        network: network ? savedNetwork(network) : undefined,
        ...(disks.length > 0 ? { disks: disks.map((d, i) => ({ ...d, bytes: sizes[i]! })) } : {}),
      },
      options.outputBufferBytes,
    );
    m.vsockSocketPath = options.vsock?.socketPath;
    m.native.start();
    return m;
  }

  /**
   * Restores a snapshot into a new VM and starts it where it was saved. Everything is
   * validated (checksums, format version, CPU compatibility) before a VM is created.
   * The VM gets its own identity (MAC, vsock CID: see CloneIdentity), unless fixed.
   */
  static async restore(path: string, options: RestoreOptions = {}): Promise<Machine> {
    const plan = await planRestore(path);
    if (options.vsock && !plan.machine.vsock) throw new VmrunError('usage', `the snapshot ${path} has no vsock device`);
    const identity = chooseCloneIdentity(plan.machine, { ...options.identity, ...(options.vsock?.cid !== undefined ? { vsockCid: options.vsock.cid } : {}) });
    // Volumes are mounted again by the guest agent: a restore without a host socket gets a private one.
    const privateSocket = !options.vsock && plan.machine.volumes ? await privateAgentSocket() : undefined;
    let m: Machine;
    try {
      m = Machine.fromPlan(plan, options, identity, options.vsock?.socketPath ?? privateSocket?.path ?? '', options.publish);
    } catch (e) {
      privateSocket?.remove();
      throw e;
    }
    m.privateSocket = privateSocket;
    m.native.start();
    await m.remountVolumes();
    return m;
  }

  /**
   * Restores one snapshot `count` times at once: validated and its RAM image expanded
   * once, which every clone then maps copy-on-write (the page cache holds it once; a
   * clone's memory is the pages it writes). Each clone gets its own identity, CIDs
   * distinct. All are built before any starts; if one cannot be built, none starts.
   */
  static async restoreMany(path: string, count: number, options: RestoreManyOptions = {}): Promise<Machine[]> {
    if (!Number.isInteger(count) || count < 1) throw new VmrunError('usage', `a clone count must be a whole number of at least 1 (got ${count})`);
    const plan = await planRestore(path);
    const shared = count > 1 ? plan.machine.disks?.find((d) => !d.readOnly) : undefined;
    if (shared) throw new VmrunError('usage', `the snapshot ${path} has the writable disk ${shared.path}: its clones would all write it`);
    const mapped = count > 1 ? plan.machine.fileMappings?.[0] : undefined;
    if (mapped) throw new VmrunError('usage', `the snapshot ${path} is a Hermit guest with the host path ${mapped.hostPath} mapped in: its clones would all use its files`);
    if (options.vsockSocketPath && !plan.machine.vsock) throw new VmrunError('usage', `the snapshot ${path} has no vsock device`);
    if (plan.machine.volumes && !options.vsockSocketPath) throw new VmrunError('usage', `the snapshot ${path} has volumes, which each clone's guest agent mounts again: give the clones vsock socket paths`);
    const cids = new Set<number>();
    const identities = Array.from({ length: count }, (_, i) => chooseCloneIdentity(plan.machine, options.identity?.(i), cids));
    // All are built first, then started together: a clone's vCPUs do not compete with the restores still to come.
    const clones: Machine[] = [];
    try {
      for (let i = 0; i < count; i++) {
        clones.push(Machine.fromPlan(plan, options, identities[i]!, options.vsockSocketPath?.(i) ?? '', options.publish?.(i) ?? []));
      }
    } catch (e) {
      for (const m of clones) m.dispose();
      throw e;
    }
    for (const m of clones) m.native.start();
    try {
      await Promise.all(clones.map((m) => m.remountVolumes()));
    } catch (e) {
      await Promise.all(clones.map((m) => (m.stop(), m.wait())));
      throw e;
    }
    return clones;
  }

  /** Builds (not yet starts) one VM from a checked snapshot with the identity chosen for it. */
  private static fromPlan(plan: RestorePlan, options: Omit<RestoreOptions, 'vsock' | 'identity' | 'publish'>, identity: CloneIdentity, vsockSocketPath: string, publish: PortMapping[] | undefined): Machine {
    const { machine } = plan;
    if (publish && publish.length > 0 && !machine.network) throw new VmrunError('usage', `the snapshot ${plan.path} has no network device to publish ports of`);
    // The devices come back in their slots (network: its mode and DNS relay); MAC and CID are the clone's own.
    const vsock = machine.vsock ? { cid: identity.vsockCid!, socketPath: vsockSocketPath } : undefined;
    const network = machine.network ? { ...machine.network, mac: identity.mac!, publish: publish ?? machine.network.publish } : undefined;
    const m = new Machine(
      {
        memoryBytes: machine.memoryBytes,
        cpus: machine.cpus,
        kvmDevice: options.kvmDevice,
        consoleFd: options.consoleFd,
        restore: {
          ramImage: plan.ramImage,
          kernelFormat: machine.kernelFormat,
          state: plan.state,
          catchUpClock: options.catchUpClock,
        },
        vsock,
        network,
        ...(machine.disks ? { disks: machine.disks.map(({ path: p, readOnly, serial }) => ({ path: p, readOnly, serial })) } : {}),
        ...(machine.volumes ? { volumes: nativeVolumes(checkVolumes(machine.volumes)) } : {}),
        ...(machine.fileMappings ? { fileMappings: machine.fileMappings.map((f) => `${f.hostPath}:${f.guestPath}`) } : {}),
      },
      {
        memoryBytes: machine.memoryBytes, cpus: machine.cpus, kernel: machine.kernel, cmdline: machine.cmdline, image: machine.image,
        vsock: vsock ? { cid: vsock.cid } : undefined,
        network: network ? savedNetwork(network) : undefined,
        ...(machine.disks ? { disks: machine.disks } : {}),
        ...(machine.volumes ? { volumes: machine.volumes } : {}),
        ...(machine.fileMappings ? { fileMappings: machine.fileMappings } : {}),
      },
      options.outputBufferBytes,
    );
    m.vsockSocketPath = vsock?.socketPath || undefined;
    m.restoredIdentity = identity;
    return m;
  }

  /**
   * Forks the running machine: saves it to `snapshotPath` (it runs on) and restores
   * that snapshot `count` times (see restoreMany).
   */
  async fork(count: number, options: RestoreManyOptions & { snapshotPath: string }): Promise<ForkResult> {
    const { snapshotPath, ...restore } = options;
    const snapshot = await this.snapshot(snapshotPath);
    return { snapshot, clones: await Machine.restoreMany(snapshotPath, count, restore) };
  }

  /**
   * Saves the running machine to `path`. The guest is stopped only while its state and
   * touched pages are captured, then runs on while they are compressed; with
   * `stop`, the machine ends after the save.
   */
  async snapshot(path: string, opts: { stop?: boolean } = {}): Promise<SaveResult> {
    this.assertAlive();
    const volumes = this.identity.volumes;
    // The guest's FUSE session (node ids, open handles) lives in virtiofsd's memory, which
    // no snapshot can hold and no new virtiofsd can take over: the guest unmounts its
    // volumes for the save and mounts them again after it (docs/snapshots.md).
    const agent = volumes ? await this.volumeAgent('saved') : undefined;
    if (agent) {
      try {
        await agent.volumes('detach');
      } catch (e) {
        throw new VmrunError('usage', `this VM cannot be saved now: ${(e as Error).message.replace(/^guest agent: /, '')}`, { cause: e });
      }
    }
    let saved: SaveResult;
    try {
      saved = await saveMachineSnapshot(path, {
        identity: { ...this.identity, kernelFormat: this.kernelFormat },
        capture: (fd, dataOffset) => this.native.saveSnapshot({ fd, dataOffset, stop: opts.stop === true }),
      });
    } catch (e) {
      if (agent && !this.disposed) await agent.volumes('attach').catch(() => {});
      throw fromNativeError(e);
    }
    if (agent && !opts.stop) {
      try {
        await agent.volumes('attach');
      } catch (e) {
        throw new VmrunError('guest', `the snapshot ${path} was saved, but the guest could not mount its volumes again: ${(e as Error).message}`, { cause: e });
      }
    }
    return saved;
  }

  /** The guest agent that unmounts and mounts this machine's volumes around a save or a restore. */
  private async volumeAgent(what: 'saved' | 'restored'): Promise<AgentClient> {
    if (!this.vsockSocketPath) {
      throw new VmrunError('usage', `this VM has volumes (${this.identity.volumes!.map((v) => v.hostDir).join(', ')}) and no vsock device: a VM with volumes is ${what} through its guest agent (docs/snapshots.md)`);
    }
    return this.agent(VOLUME_AGENT_TIMEOUT_MS);
  }

  /** After a restore: the guest mounts its volumes again, now served by new virtiofsd processes. */
  private async remountVolumes(): Promise<void> {
    if (!this.identity.volumes) return;
    try {
      await (await this.volumeAgent('restored')).volumes('attach');
    } catch (e) {
      this.stop();
      await this.wait();
      throw new VmrunError('guest', `the restored guest could not mount its volumes again: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Resolves with how the machine ended; the machine is then released. */
  async wait(): Promise<MachineExit> {
    const exit = await this.exited;
    this.dispose();
    return exit;
  }

  /** Parks every vCPU outside the guest; resolves after all console output so far was delivered. */
  async pause(timeoutMs = 5000): Promise<void> {
    this.assertAlive();
    const drained = new Promise<void>((r) => this.drainWaiters.push(r));
    if (!(await this.native.pause(timeoutMs))) throw new VmrunError('guest', `the vCPUs did not stop within ${timeoutMs} ms`);
    if (this.consoleToEvents) await drained;
  }

  resume(): void {
    this.assertAlive();
    this.native.resume();
  }

  /** Stops the guest; wait() then resolves with reason 'killed' and `exitCode`. */
  stop(exitCode = 137): void {
    if (this.disposed) return;
    this.killedExitCode = exitCode;
    this.native.stop();
  }

  /** Sends bytes to the guest's console (its serial port's receive side). */
  writeConsole(data: Uint8Array | string): void {
    this.assertAlive();
    this.native.writeConsole(typeof data === 'string' ? Buffer.from(data) : data);
  }

  /** The ports published into this machine (docker's `port`). */
  ports(): PortMapping[] {
    return this.native.ports();
  }

  /**
   * Says whether host input is attached to the console. A Hermit guest reading its
   * standard input waits for input while it is, and sees end of input once it is not
   * (and when it never was). Linux guests read their UART and are not affected.
   */
  setConsoleInputOpen(open: boolean): void {
    this.assertAlive();
    this.native.setConsoleInputOpen(open);
  }

  /**
   * Host memory behind the guest's RAM, from this process's /proc smaps: after a
   * restore, `writtenBytes` is what the guest wrote (its private copies), `sharedBytes`
   * the RAM image pages it maps from the page cache, shared with every other clone.
   */
  async memoryUsage(): Promise<MachineMemory> {
    this.assertAlive();
    const { address, bytes } = this.native.guestRamMapping();
    return { guestRam: await guestRamMemory(process.pid, address, bytes) };
  }

  /** Where the gdb stub listens ("HOST:PORT", the real port when 0 was asked for); undefined without one. */
  get gdbAddress(): string | undefined {
    this.assertAlive();
    return this.native.gdbAddress() || undefined;
  }

  /** Exit counts by kind, console bytes, run time, and when the guest first ran. */
  stats(): NativeStats {
    if (this.finalStats) return this.finalStats;
    this.assertAlive();
    return this.native.stats();
  }

  /** Captures VM, vCPU and device state; call while paused. */
  async captureState(): Promise<NativeMachineState> {
    this.assertAlive();
    try {
      return await this.native.captureState();
    } catch (e) {
      throw fromNativeError(e);
    }
  }

  /**
   * The guest agent (vmrun-init's, docs/agent-protocol.md) over this machine's vsock
   * device: connected on first use, waiting up to `timeoutMs` for a guest still booting.
   */
  async agent(timeoutMs = 60_000): Promise<AgentClient> {
    this.assertAlive();
    if (!this.vsockSocketPath) throw new VmrunError('usage', 'this machine has no vsock device, so no guest agent (boot it with the vsock option)');
    const current = this.agentConnection ? await this.agentConnection.catch(() => undefined) : undefined;
    if (current && !current.closed) return current;
    this.agentConnection = waitForAgent(this.vsockSocketPath, { timeoutMs });
    return this.agentConnection;
  }

  /** Runs a program in the guest beside its workload (docker exec). */
  async exec(argv: string[], opts: ExecOptions = {}): Promise<GuestProcess> {
    return (await this.agent()).exec(argv, opts);
  }

  /** Extracts a tar stream into the guest with docker cp's placement (see AgentClient.copyIn). */
  async copyIn(tar: Readable, guestPath: string, opts: { intoDir?: boolean } = {}): Promise<void> {
    return (await this.agent()).copyIn(tar, guestPath, opts);
  }

  /** A tar stream of a guest path. */
  async copyOut(guestPath: string): Promise<Readable> {
    return (await this.agent()).copyOut(guestPath);
  }

  private dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    void this.agentConnection?.then((a) => a.close(), () => {});
    this.native.dispose();
    this.privateSocket?.remove();
  }

  private assertAlive(): void {
    if (this.disposed) throw new VmrunError('usage', 'the machine has already stopped');
  }
}

/** A snapshot checked and its RAM image in place: what every restore of it starts from. */
interface RestorePlan {
  path: string;
  machine: SnapshotInfo['metadata']['machine'];
  state: NativeMachineState;
  ramImage: string;
}

async function planRestore(path: string): Promise<RestorePlan> {
  const snap = openSnapshot(path);
  const image = await ensureRamImage(snap.opened);
  const { machine } = snap.metadata;
  // Disk files are not in the snapshot: they must be where and as large as they were.
  if (machine.disks) checkSnapshotDisks(machine.disks);
  return { path, machine, state: snap.opened.state, ramImage: image.path };
}

/**
 * A Hermit file mapping as a snapshot records it: the host path made absolute (the
 * addon resolves it again, and checks it, at every boot and restore).
 */
function splitFileMapping(spec: string): SnapshotFileMapping {
  const colon = spec.indexOf(':');
  // Malformed specs are the addon's to refuse, in its words.
  return colon > 0 ? { hostPath: resolvePath(spec.slice(0, colon)), guestPath: spec.slice(colon + 1) } : { hostPath: spec, guestPath: '' };
}

/** The addon's volume records: tags by position (the guest mounts by tag), one virtiofsd each. */
function nativeVolumes(volumes: readonly Required<VolumeOptions>[]): NonNullable<NativeMachineConfig['volumes']> {
  const virtiofsd = findVirtiofsd();
  return volumes.map((v, i) => ({ tag: volumeTag(i), hostDir: v.hostDir, readOnly: v.readOnly, virtiofsd }));
}

interface PrivateSocket {
  path: string;
  remove(): void;
}

/** A vsock host socket in a fresh private directory, removed with the machine. */
async function privateAgentSocket(): Promise<PrivateSocket> {
  const dir = await mkdtemp(join(tmpdir(), 'vmrun-agent-'));
  return { path: join(dir, 'vsock'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export type { SaveResult, SnapshotInfo };
