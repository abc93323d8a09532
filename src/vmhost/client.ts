import { connect, type Socket } from 'node:net';
import { VmrunError } from '../errors.js';
import { VmRegistry, type VmEntry } from './registry.js';
import { readLines, type ControlOp, type ControlRequest, type ControlResponse, type ControlResults } from './protocol.js';

/** Default bounds: how long to wait for a connection and for an answer. */
export const CONNECT_TIMEOUT_MS = 3000;
export const REQUEST_TIMEOUT_MS = 15_000;

/** A connection to one VM's host process. Every wait is bounded. */
export class VmControlClient {
  private constructor(
    private readonly socket: Socket,
    readonly vm: VmEntry,
  ) {}

  /** Connects to the host process of a running VM. */
  static async connect(vm: VmEntry, socketPath: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<VmControlClient> {
    const socket = connect(socketPath);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new VmrunError('host', `VM ${vm.record.id} did not accept a connection within ${timeoutMs} ms`)), timeoutMs);
        socket.once('connect', () => (clearTimeout(timer), resolve()));
        socket.once('error', (e) => (clearTimeout(timer), reject(new VmrunError('host', `cannot reach VM ${vm.record.id}: ${e.message}`, { cause: e }))));
      });
    } catch (e) {
      socket.destroy();
      throw e;
    }
    socket.on('error', () => {});
    return new VmControlClient(socket, vm);
  }

  /** Sends one request and resolves with its result; the host's failure is rethrown as a VmrunError of the same kind. */
  async request<Op extends ControlOp>(request: Extract<ControlRequest, { op: Op }>, timeoutMs = REQUEST_TIMEOUT_MS): Promise<ControlResults[Op]> {
    const { response } = await this.exchange(request, timeoutMs);
    return response.result as ControlResults[Op];
  }

  /**
   * Turns the connection into the VM's console: resolves with the socket (guest
   * output to read, input to write) and any console bytes that came with the answer.
   */
  async attach(timeoutMs = REQUEST_TIMEOUT_MS): Promise<{ stream: Socket; initial: Buffer }> {
    const { rest } = await this.exchange({ op: 'attach' }, timeoutMs);
    return { stream: this.socket, initial: rest };
  }

  /** Closes the connection (the VM keeps running). */
  close(): void {
    this.socket.destroy();
  }

  private exchange(request: ControlRequest, timeoutMs: number): Promise<{ response: ControlResponse & { ok: true }; rest: Buffer }> {
    const id = this.vm.record.id;
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.socket.off('close', onClose);
      };
      const reader = readLines(
        this.socket,
        (line) => {
          const rest = reader.release();
          cleanup();
          let response: ControlResponse;
          try {
            response = JSON.parse(line) as ControlResponse;
          } catch {
            reject(new VmrunError('internal', `VM ${id} answered ${request.op} with something that is not JSON`));
            return;
          }
          if (response.ok) resolve({ response, rest });
          else reject(new VmrunError(response.error.kind, response.error.message));
        },
        () => {
          cleanup();
          reject(new VmrunError('internal', `VM ${id} answered ${request.op} with an over-long line`));
        },
      );
      const onClose = (): void => {
        reader.release();
        cleanup();
        reject(new VmrunError('host', `VM ${id} closed the connection before answering ${request.op} (it may have just stopped)`));
      };
      const timer = setTimeout(() => {
        reader.release();
        cleanup();
        reject(new VmrunError('host', `VM ${id} did not answer ${request.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.socket.on('close', onClose);
      this.socket.write(`${JSON.stringify(request)}\n`);
    });
  }
}

/** Resolves `ref` (name, id or id prefix) and connects to it; a VM that is not running is a usage error naming its state. */
export async function connectToVm(ref: string, opts: { registry?: VmRegistry; env?: NodeJS.ProcessEnv } = {}): Promise<VmControlClient> {
  const registry = opts.registry ?? (await VmRegistry.open(opts.env));
  const vm = await registry.resolve(ref);
  if (vm.status !== 'running' && vm.status !== 'paused') {
    throw new VmrunError('usage', `VM ${ref} is not running (${vm.status})`);
  }
  return VmControlClient.connect(vm, registry.paths(vm.record.id).controlSocket);
}

/** Connects to VM `ref`, sends one request, closes: the usual way to control a VM. */
export async function requestVm<Op extends ControlOp>(
  ref: string,
  request: Extract<ControlRequest, { op: Op }>,
  opts: { registry?: VmRegistry; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ControlResults[Op]> {
  const client = await connectToVm(ref, opts);
  try {
    return await client.request(request, opts.timeoutMs);
  } finally {
    client.close();
  }
}
