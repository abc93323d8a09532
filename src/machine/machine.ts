import { EventEmitter } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { addon, type NativeMachine, type NativeStop, type NativeStats, type NativeMachineState } from '../native/addon.js';
import { fromNativeError, VmrunError } from '../errors.js';
import { parseSize } from '../units.js';
import { describeExit, type MachineExit } from './exit.js';

/** How to boot a kernel directly (vmrun boot, and the layers above it). */
export interface BootOptions {
  /** Path of a Linux bzImage or vmlinux ELF, or a Hermit kernel (detected from the file). */
  kernel: string;
  initrd?: string;
  /** Linux kernel command line. */
  cmdline?: string;
  /** Guest RAM: bytes, or a size like "256M". Default 256M. */
  memory?: number | string;
  cpus?: number;
  /** The KVM device (default /dev/kvm). */
  kvmDevice?: string;
  /** Where guest console output goes: a readable stream (default) or straight to an fd. */
  consoleFd?: number;
  /** Hermit: application arguments, environment (K=V) and file mappings (host:guest). */
  guestArgs?: string[];
  guestEnv?: string[];
  fileMappings?: string[];
}

export const DEFAULT_MEMORY = '256M';

/**
 * A virtual machine booted by vmrun. Guest console output is `output` (unless sent
 * to an fd); `wait()` resolves when the guest ends. Controls never block the event
 * loop: vCPUs run on their own threads and all exits are handled natively.
 */
export class Machine extends EventEmitter {
  /** Guest console output. Ends when the machine stops. */
  readonly output: Readable;
  readonly kernelFormat: NativeMachine['kernelFormat'];
  private readonly native: NativeMachine;
  private readonly outputStream = new PassThrough();
  private readonly exited: Promise<MachineExit>;
  private killedExitCode = 125;
  private finalStats: NativeStats | undefined;
  private readonly drainWaiters: Array<() => void> = [];
  private readonly consoleToEvents: boolean;
  private disposed = false;

  private constructor(options: BootOptions) {
    super();
    this.output = this.outputStream;
    this.consoleToEvents = options.consoleFd === undefined;
    const memoryBytes = typeof options.memory === 'number' ? options.memory : parseSize(options.memory ?? DEFAULT_MEMORY, '--memory');
    let resolveExit!: (e: MachineExit) => void;
    this.exited = new Promise((r) => (resolveExit = r));
    const onEvent = (kind: string, payload: unknown): void => {
      if (kind === 'console') {
        this.outputStream.write(payload as Buffer);
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
    };
    try {
      this.native = new (addon().NativeMachine)(
        {
          kernel: options.kernel,
          initrd: options.initrd,
          cmdline: options.cmdline ?? '',
          memoryBytes,
          cpus: options.cpus ?? 1,
          kvmDevice: options.kvmDevice,
          consoleFd: options.consoleFd,
          guestArgs: options.guestArgs,
          guestEnv: options.guestEnv,
          fileMappings: options.fileMappings,
        },
        onEvent,
      );
    } catch (e) {
      throw fromNativeError(e);
    }
    this.kernelFormat = this.native.kernelFormat;
  }

  /** Loads the kernel into a new VM and starts its vCPUs. */
  static boot(options: BootOptions): Machine {
    const m = new Machine(options);
    m.native.start();
    return m;
  }

  /** Resolves with how the machine ended; the machine is then released. */
  async wait(): Promise<MachineExit> {
    const exit = await this.exited;
    this.dispose();
    return exit;
  }

  /** Parks every vCPU outside the guest (for inspection or a snapshot). */
  async pause(timeoutMs = 5000): Promise<void> {
    this.assertAlive();
    const drained = new Promise<void>((r) => this.drainWaiters.push(r));
    if (!(await this.native.pause(timeoutMs))) throw new VmrunError('guest', `the vCPUs did not stop within ${timeoutMs} ms`);
    // Every console byte written before the pause has been delivered once this resolves.
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

  /** Exit counts by kind, console bytes and run time so far. */
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
