import { EventEmitter } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import {
  addon, type NativeMachine, type NativeMachineConfig, type NativeMachineState, type NativeStats, type NativeStop,
} from '../native/addon.js';
import { fromNativeError, VmrunError } from '../errors.js';
import { parseSize } from '../units.js';
import { describeExit, type MachineExit } from './exit.js';
import { saveMachineSnapshot, openSnapshot, type SaveResult, type SnapshotInfo } from '../snapshot/snapshot.js';
import { ensureRamImage } from '../snapshot/ram-image.js';

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
  /** The OCI image this machine runs, recorded in its snapshots. */
  image?: string;
  /** Unread `output` kept before further console output is dropped (default 8 MiB; docs/console-output.md). */
  outputBufferBytes?: number;
}

/** How to restore a snapshot. */
export interface RestoreOptions {
  kvmDevice?: string;
  /** Jump the guest clock forward by the time since the save (default: continue from the save). */
  catchUpClock?: boolean;
  consoleFd?: number;
  /** As BootOptions.outputBufferBytes. */
  outputBufferBytes?: number;
}

export const DEFAULT_MEMORY = '256M';
/** Unread console output a Machine keeps by default before it drops (and counts) the rest. */
export const DEFAULT_OUTPUT_BUFFER_BYTES = 8 * 1024 * 1024;

/** What a Machine remembers about itself for snapshots. */
interface MachineIdentity {
  memoryBytes: number;
  cpus: number;
  kernel?: string;
  cmdline?: string;
  image?: string;
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
  private readonly native: NativeMachine;
  private readonly outputStream = new PassThrough();
  private readonly exited: Promise<MachineExit>;
  private readonly drainWaiters: Array<() => void> = [];
  private readonly consoleToEvents: boolean;
  private killedExitCode = 125;
  private finalStats: NativeStats | undefined;
  private disposed = false;

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
  }

  /** Loads the kernel into a new VM and starts its vCPUs. */
  static boot(options: BootOptions): Machine {
    const memoryBytes = typeof options.memory === 'number' ? options.memory : parseSize(options.memory ?? DEFAULT_MEMORY, '--memory');
    const cpus = options.cpus ?? 1;
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
      },
      { memoryBytes, cpus, kernel: options.kernel, cmdline: options.cmdline, image: options.image },
      options.outputBufferBytes,
    );
    m.native.start();
    return m;
  }

  /**
   * Restores a snapshot into a new VM and starts it where it was saved. Everything is
   * validated (checksums, format version, CPU compatibility) before a VM is created.
   */
  static async restore(path: string, options: RestoreOptions = {}): Promise<Machine> {
    const snap = openSnapshot(path);
    const image = await ensureRamImage(snap.opened);
    const { machine } = snap.metadata;
    const m = new Machine(
      {
        memoryBytes: machine.memoryBytes,
        cpus: machine.cpus,
        kvmDevice: options.kvmDevice,
        consoleFd: options.consoleFd,
        restore: { ramImage: image.path, kernelFormat: machine.kernelFormat, state: snap.opened.state, catchUpClock: options.catchUpClock },
      },
      { memoryBytes: machine.memoryBytes, cpus: machine.cpus, kernel: machine.kernel, cmdline: machine.cmdline, image: machine.image },
      options.outputBufferBytes,
    );
    m.native.start();
    return m;
  }

  /**
   * Saves the running machine to `path`. The guest is stopped only while its state and
   * touched pages are captured, then runs on while they are compressed; with
   * `stop`, the machine ends after the save.
   */
  async snapshot(path: string, opts: { stop?: boolean } = {}): Promise<SaveResult> {
    this.assertAlive();
    try {
      return await saveMachineSnapshot(path, {
        identity: { ...this.identity, kernelFormat: this.kernelFormat },
        capture: (fd, dataOffset) => this.native.saveSnapshot({ fd, dataOffset, stop: opts.stop === true }),
      });
    } catch (e) {
      throw fromNativeError(e);
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

  private dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.native.dispose();
  }

  private assertAlive(): void {
    if (this.disposed) throw new VmrunError('usage', 'the machine has already stopped');
  }
}

export type { SaveResult, SnapshotInfo };
