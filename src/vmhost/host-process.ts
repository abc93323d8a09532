import { chmod, readFile, unlink } from 'node:fs/promises';
import { CONSOLE_LOG_MAX_BYTES, RotatingLog } from './rotating-log.js';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Machine } from '../machine/machine.js';
import type { MachineExit } from '../machine/exit.js';
import { VmrunError, isVmrunError } from '../errors.js';
import type { VmRegistry, VmRecord } from './registry.js';
import { parseHostSpec, type HostSpec, type MachineStarter } from './host-spec.js';
import { parseRequest, readLines, type ControlOp, type ControlRequest, type ControlResponse, type ControlResults, type VmExit, type LiveStatus } from './protocol.js';

/** Takes a snapshot of a running machine (the library's machine.snapshot); injected so the host does not depend on the snapshot code. */
export type SnapshotFunction = (machine: Machine, path: string, opts: { stop: boolean }) => Promise<object>;

/** What the host process reports to the command that started it, once. */
export type StartOutcome = { ok: true } | { ok: false; error: { kind: VmrunError['kind']; message: string } };

/** What the host process needs from the outside. */
export interface HostOptions {
  registry: VmRegistry;
  id: string;
  startMachine: MachineStarter;
  snapshot?: SnapshotFunction;
  /** Tells the starting command whether the machine started (called exactly once). */
  reportStart: (outcome: StartOutcome) => void;
}

/** An attached client that falls this far behind the guest's output is disconnected rather than buffered without bound. */
const MAX_ATTACH_BACKLOG = 4 << 20;
/** Bounds on the host's own waits, so that it always ends. */
const PAUSE_TIMEOUT_MS = 5000;
const OUTPUT_DRAIN_TIMEOUT_MS = 5000;
const IN_FLIGHT_TIMEOUT_MS = 120_000;

/**
 * The body of a VM's background host process: starts the machine its spec
 * describes, appends the console to console.log (and to attached clients), serves
 * the control socket, and when the guest ends records how in vm.json, removes the
 * socket and returns. Resolves with the host process's own exit status.
 */
export async function runHost(opts: HostOptions): Promise<number> {
  const { registry, id } = opts;
  const paths = registry.paths(id);
  let record: VmRecord;
  let spec: HostSpec;
  let machine: Machine;
  try {
    const found = await registry.read(id);
    if (!found) throw new VmrunError('internal', `VM ${id} has no record in ${registry.root}`);
    record = found;
    const specText = await readFile(paths.spec, 'utf8');
    // The spec may hold secrets (environment of a run): it lives only as long as needed.
    await unlink(paths.spec);
    spec = parseHostSpec(specText, paths.spec);
    machine = await opts.startMachine(spec, { vsockSocket: paths.vsockSocket, name: record.name ?? record.id });
  } catch (e) {
    opts.reportStart({ ok: false, error: toWireError(e) });
    return 125;
  }

  const log = new RotatingLog({ current: paths.consoleLog, previous: paths.consoleLogPrevious }, CONSOLE_LOG_MAX_BYTES, (e) =>
    process.stderr.write(`vmrun host ${record.id}: console.log: ${e.message}\n`),
  );
  const host = new VmHost(opts, record, machine, log);
  try {
    await host.listen(paths.controlSocket);
  } catch (e) {
    machine.stop();
    await machine.wait();
    opts.reportStart({ ok: false, error: toWireError(e) });
    return 125;
  }
  await host.update({ pid: process.pid, state: 'running', started: new Date().toISOString(), ports: machine.ports(), ...(machine.cloneIdentity ? { identity: machine.cloneIdentity } : {}) });
  opts.reportStart({ ok: true });

  const timer = spec.timeoutSeconds ? setTimeout(() => host.timeOut(spec.timeoutSeconds!), spec.timeoutSeconds * 1000) : undefined;
  const stopOnSignal = (): void => machine.stop();
  process.on('SIGTERM', stopOnSignal);
  process.on('SIGINT', stopOnSignal);
  try {
    await host.runToEnd();
  } finally {
    if (timer) clearTimeout(timer);
    process.off('SIGTERM', stopOnSignal);
    process.off('SIGINT', stopOnSignal);
  }
  if (spec.removeOnExit) {
    const ended = await registry.read(id);
    if (ended) await registry.remove(ended);
  }
  return 0;
}

/** The running part of the host: one machine, its log, its socket and its clients. */
class VmHost {
  private readonly server: Server = createServer();
  private readonly connections = new Set<Socket>();
  private readonly attached = new Set<Socket>();
  /** Requests being answered; the host waits for them (bounded) before closing connections. */
  private readonly inFlight = new Set<Promise<void>>();
  private ended = false;
  private timeoutMessage: string | undefined;
  /** Set when a snapshot with `stop` ended the machine: an intended end, not a kill. */
  private savedAndStoppedTo: string | undefined;
  private resolveFinished!: (exit: VmExit) => void;
  /** Resolves once the end is recorded in vm.json (stop requests answer after it). */
  private readonly finished = new Promise<VmExit>((r) => (this.resolveFinished = r));
  private socketPath = '';

  constructor(
    private readonly opts: HostOptions,
    private record: VmRecord,
    private readonly machine: Machine,
    private readonly log: RotatingLog,
  ) {
    machine.output.on('data', (chunk: Buffer) => this.onOutput(chunk));
    this.server.on('connection', (socket) => this.onConnection(socket));
  }

  /** Serves the control socket at `path` (mode 0600: only this user may control the VM). */
  async listen(path: string): Promise<void> {
    this.socketPath = path;
    await unlink(path).catch(() => {});
    this.server.listen(path);
    await once(this.server, 'listening');
    await chmod(path, 0o600);
  }

  /** Writes fields into vm.json (the only writer while the host lives). */
  async update(fields: Partial<VmRecord>): Promise<void> {
    this.record = { ...this.record, ...fields };
    await this.opts.registry.write(this.record);
  }

  /** --timeout ran out: stop the guest and record why. */
  timeOut(seconds: number): void {
    this.timeoutMessage = `the guest did not finish within ${seconds} s (--timeout)`;
    this.machine.stop(125);
  }

  /** Waits for the guest to end, then records it, closes every connection and removes the socket. */
  async runToEnd(): Promise<void> {
    const outputEnded = once(this.machine.output, 'end').catch(() => {});
    const exit = await this.machine.wait();
    this.ended = true;
    // Everything the guest printed is in the log before the record says it ended (logs -f relies on it).
    await withTimeout(outputEnded, OUTPUT_DRAIN_TIMEOUT_MS);
    this.log.close();
    const vmExit = this.describe(exit);
    await this.update({
      state: 'exited',
      finished: new Date().toISOString(),
      exitCode: vmExit.exitCode,
      exitReason: vmExit.reason,
      exitMessage: vmExit.message || undefined,
    });
    this.resolveFinished(vmExit);
    // Let pending requests (a stop, a snapshot still writing its file) answer before the connections close.
    await withTimeout(Promise.allSettled([...this.inFlight]), IN_FLIGHT_TIMEOUT_MS);
    await new Promise((r) => setImmediate(r));
    this.server.close();
    for (const socket of this.connections) socket.end();
    await unlink(this.socketPath).catch(() => {});
    const closing = [...this.connections].map((s) => once(s, 'close').catch(() => {}));
    await withTimeout(Promise.all(closing), 2000);
    for (const socket of this.connections) socket.destroy();
  }

  private describe(exit: MachineExit): VmExit {
    if (this.timeoutMessage) return { reason: 'timeout', exitCode: exit.exitCode, message: this.timeoutMessage };
    if (this.savedAndStoppedTo !== undefined) return { reason: 'snapshot', exitCode: 0, message: `saved to ${this.savedAndStoppedTo} and stopped` };
    return { reason: exit.reason, exitCode: exit.exitCode, message: exit.message };
  }

  private onOutput(chunk: Buffer): void {
    this.log.write(chunk);
    for (const client of this.attached) {
      if (client.writableLength > MAX_ATTACH_BACKLOG) client.destroy();
      else client.write(chunk);
    }
  }

  private onConnection(socket: Socket): void {
    this.connections.add(socket);
    socket.on('close', () => {
      this.connections.delete(socket);
      this.attached.delete(socket);
    });
    socket.on('error', () => socket.destroy());
    if (this.ended) {
      socket.end();
      return;
    }
    // Requests on one connection are answered in order.
    let queue = Promise.resolve();
    const reader = readLines(
      socket,
      (line) => {
        const request = parseRequest(line);
        if (request?.op === 'attach') {
          this.attach(socket, reader.release());
          return;
        }
        queue = queue.then(() => this.track(this.answer(socket, line, request)));
      },
      () => {
        this.reply(socket, { ok: false, error: { kind: 'usage', message: 'control request line too long' } });
        socket.end();
      },
    );
  }

  private async track(work: Promise<void>): Promise<void> {
    this.inFlight.add(work);
    try {
      await work;
    } finally {
      this.inFlight.delete(work);
    }
  }

  private async answer(socket: Socket, line: string, request: ControlRequest | undefined): Promise<void> {
    if (!request) {
      this.reply(socket, { ok: false, error: { kind: 'usage', message: `not a control request: ${line.slice(0, 80)}` } });
      return;
    }
    try {
      this.reply(socket, { ok: true, result: await this.perform(request) });
    } catch (e) {
      this.reply(socket, { ok: false, error: toWireError(e) });
    }
  }

  private async perform(request: ControlRequest): Promise<ControlResults[ControlOp]> {
    if (this.ended && request.op !== 'stop') throw new VmrunError('usage', `VM ${this.record.id} has stopped`);
    switch (request.op) {
      case 'status':
        return { id: this.record.id, pid: process.pid, state: this.record.state === 'paused' ? 'paused' : 'running', stats: this.machine.stats() } satisfies LiveStatus;
      case 'stop':
        this.machine.stop();
        return this.finished;
      case 'pause':
        await this.machine.pause(PAUSE_TIMEOUT_MS);
        await this.update({ state: 'paused' });
        return {};
      case 'resume':
        this.machine.resume();
        await this.update({ state: 'running' });
        return {};
      case 'snapshot':
        if (!this.opts.snapshot) throw new VmrunError('usage', 'this vmrun cannot take snapshots yet');
        if (request.stop) this.savedAndStoppedTo = request.path;
        try {
          return await this.opts.snapshot(this.machine, request.path, { stop: request.stop === true });
        } catch (e) {
          this.savedAndStoppedTo = undefined;
          throw e;
        }
      case 'attach':
        throw new VmrunError('internal', 'attach is handled by the connection');
    }
  }

  /** From here on the connection is the console: guest output out, client input in. */
  private attach(socket: Socket, alreadyReceived: Buffer): void {
    this.reply(socket, { ok: true, result: {} });
    this.attached.add(socket);
    const toGuest = (data: Buffer): void => {
      if (this.ended || data.length === 0) return;
      try {
        this.machine.writeConsole(data);
      } catch {
        // The machine stopped between the check and the write: input for a gone guest is dropped.
      }
    };
    toGuest(alreadyReceived);
    socket.on('data', toGuest);
  }

  private reply(socket: Socket, response: ControlResponse): void {
    // Native counters may be bigints; JSON has only numbers (exact up to 2^53, plenty for counts).
    if (!socket.destroyed) socket.write(`${JSON.stringify(response, (_key, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}\n`);
  }
}

/** A failure as the protocol carries it. */
export function toWireError(e: unknown): { kind: VmrunError['kind']; message: string } {
  if (isVmrunError(e)) return { kind: e.kind, message: e.message };
  return { kind: 'internal', message: (e as Error)?.message ?? String(e) };
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
