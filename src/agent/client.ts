/**
 * The host side of the guest agent: one connection (a net.Socket to the agent, over
 * vsock or a unix socket), many streams multiplexed on it. Every data channel is
 * flow-controlled both ways, so neither side buffers without bound.
 */
import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { PassThrough, Readable, Writable } from 'node:stream';
import type { Duplex } from 'node:stream';
import { VmrunError } from '../errors.js';
import {
  AGENT_INITIAL_WINDOW, AGENT_MAGIC, AGENT_MAX_PATH, AGENT_MAX_PAYLOAD, AGENT_PROTOCOL_MIN_VERSION, AGENT_PROTOCOL_VERSION, Channel, CopyFlags,
  MessageType, VolumesOp, FrameDecoder, PayloadWriter, decodeError, encodeExec, encodeFrame, encodeIdentity, encodeRun, clampSize, type ExecRequest, type Frame,
} from './protocol.js';

/** How to run a program in the guest (docker exec's options). */
export interface ExecOptions {
  /** KEY=VALUE entries added to (or replacing) the guest's base environment. */
  env?: string[];
  /** Use exactly `env` as the environment. */
  replaceEnv?: boolean;
  /** Absolute working directory (default: the workload's). */
  cwd?: string;
  /** docker -u: name|uid[:group|gid] (default: the workload's user). */
  user?: string;
  /** A pseudo-terminal (stdout then carries stderr too). */
  tty?: boolean;
  rows?: number;
  cols?: number;
  /** Connect `stdin` to the program (default false: it reads /dev/null). */
  stdin?: boolean;
}

/** The VM's workload, as `vmrun run` hands it to the agent (RUN): exec's options plus docker --group-add. */
export interface WorkloadOptions extends ExecOptions {
  groupAdd?: string[];
}

/** What a restored clone gets fresh (IDENTITY); entropy and the clock are always refreshed. */
export interface IdentityOptions {
  hostname?: string;
  /** eth0's new MAC, aa:bb:cc:dd:ee:ff. */
  mac?: string;
}

/** How a guest program ended: docker's exit code, and the signal that killed it (if one did). */
export interface ExecExit {
  exitCode: number;
  signal: NodeJS.Signals | null;
}

/** A program running in the guest, shaped like a child process. */
export interface GuestProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** The guest pid once the agent started it. */
  readonly started: Promise<number>;
  readonly exited: Promise<ExecExit>;
  resize(cols: number, rows: number): void;
  kill(signal?: NodeJS.Signals | number): void;
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(osConstants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/** A handshake that does not answer within this bound fails the connection. */
export const AGENT_HANDSHAKE_TIMEOUT_MS = 5000;

/** One agent connection. */
export class AgentClient {
  private readonly decoder = new FrameDecoder();
  private readonly streams = new Map<number, AgentStream>();
  private nextId = 1;
  private closedError: VmrunError | undefined;
  /** The protocol version the handshake settled on. */
  version = 0;

  private constructor(private readonly socket: Duplex) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.fail(new VmrunError('guest', 'the connection to the guest agent closed')));
    socket.on('error', (e) => this.fail(new VmrunError('guest', `guest agent connection: ${e.message}`, { cause: e })));
  }

  /** Performs the HELLO handshake on a connected stream (bytes already read by a dialer go in `initial`). */
  static async handshake(socket: Duplex, initial?: Buffer, timeoutMs = AGENT_HANDSHAKE_TIMEOUT_MS): Promise<AgentClient> {
    const client = new AgentClient(socket);
    const hello = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new VmrunError('guest', `the guest agent did not answer the handshake within ${timeoutMs} ms`)), timeoutMs);
      client.onHello = (frame) => {
        clearTimeout(timer);
        if (frame.type === MessageType.ERROR) return reject(new VmrunError('guest', `guest agent refused the handshake: ${decodeError(frame.payload).message}`));
        const p = frame.payload;
        const version = p.length === 20 ? p.readUInt16BE(4) : 0;
        if (p.length !== 20 || p.readUInt32BE(0) !== AGENT_MAGIC || version < AGENT_PROTOCOL_MIN_VERSION || version > AGENT_PROTOCOL_VERSION) {
          return reject(new VmrunError('guest', 'the guest agent answered the handshake with something else'));
        }
        client.version = version;
        resolve();
      };
      client.onFailure = (e) => (clearTimeout(timer), reject(e));
    });
    socket.write(encodeFrame(0, MessageType.HELLO, new PayloadWriter().u32(AGENT_MAGIC).u16(AGENT_PROTOCOL_MIN_VERSION).u16(AGENT_PROTOCOL_VERSION).finish()));
    if (initial?.length) client.onData(initial);
    try {
      await hello;
    } catch (e) {
      socket.destroy();
      throw e;
    }
    client.onHello = undefined;
    client.onFailure = undefined;
    return client;
  }

  /** Runs `argv` in the guest. */
  exec(argv: string[], opts: ExecOptions = {}): GuestProcess {
    return this.open(MessageType.EXEC, encodeExec(execRequest(argv, opts)));
  }

  /**
   * Starts the VM's workload (RUN, once per guest): like exec, and when it ends the
   * agent reports its status, waits for this connection to close (so every byte of
   * output is read), then powers the VM off with that status.
   */
  run(argv: string[], opts: WorkloadOptions = {}): GuestProcess {
    this.requireVersion(2, 'running a workload');
    const payload = encodeRun({ ...execRequest(argv, opts), groupAdd: opts.groupAdd ?? [] });
    return this.open(MessageType.RUN, payload);
  }

  /**
   * Refreshes what a restored clone shares with its siblings: fresh host entropy into
   * the guest's pool (which reseeds at once), the host's wall clock, and optionally
   * the hostname and eth0's MAC.
   */
  async setIdentity(opts: IdentityOptions = {}): Promise<void> {
    this.requireVersion(2, 'refreshing the guest identity');
    const payload = encodeIdentity({
      realtimeNs: BigInt(Date.now()) * 1_000_000n,
      entropy: randomBytes(64),
      hostname: opts.hostname ?? '',
      mac: opts.mac ?? '',
    });
    const answer = this.open(MessageType.IDENTITY, payload);
    const exit = await answer.exited;
    if (exit.exitCode !== 0) throw new VmrunError('guest', `the guest agent could not refresh the identity (status ${exit.exitCode})`);
  }

  /**
   * Unmounts the guest's volumes for a snapshot (`detach`: fails, naming the volume,
   * if a guest process holds a file in one) or mounts them again (`attach`). Both
   * are no-ops when already done, and in a guest without volumes.
   */
  async volumes(op: 'detach' | 'attach'): Promise<void> {
    this.requireVersion(3, 'saving a VM with volumes');
    const answer = this.open(MessageType.VOLUMES, new PayloadWriter().u32(op === 'detach' ? VolumesOp.DETACH : VolumesOp.ATTACH).finish());
    const exit = await answer.exited;
    if (exit.exitCode !== 0) throw new VmrunError('guest', `the guest agent could not ${op} the volumes (status ${exit.exitCode})`);
  }

  private requireVersion(version: number, what: string): void {
    if (this.version < version) throw new VmrunError('guest', `${what} needs agent protocol version ${version}; this guest's agent speaks ${this.version}`);
  }

  /**
   * Extracts a tar stream into the guest with docker cp's placement: into `guestPath`
   * if it is a directory, else as `guestPath` (its parent must exist); with
   * `intoDir`, `guestPath` must be an existing directory and names are kept.
   */
  async copyIn(tar: Readable, guestPath: string, opts: { intoDir?: boolean } = {}): Promise<void> {
    const payload = new PayloadWriter().u32(opts.intoDir ? CopyFlags.INTO_DIR : 0).string(absolute(guestPath), AGENT_MAX_PATH, 'guest path').finish();
    const proc = this.open(MessageType.COPY_IN, payload);
    const errText = collect(proc.stderr);
    proc.stdout.resume();
    // A source that fails mid-archive must not leave the guest waiting for the rest.
    let sourceError: Error | undefined;
    tar.on('error', (e) => {
      sourceError = e;
      tar.unpipe(proc.stdin);
      proc.kill('SIGKILL');
    });
    tar.pipe(proc.stdin);
    const exit = await proc.exited;
    if (sourceError) throw sourceError;
    if (exit.exitCode !== 0) throw new VmrunError('guest', (await errText).trim() || `copy into ${guestPath} failed (status ${exit.exitCode})`);
  }

  /** A tar stream of `guestPath` (entries named by its last component); errors are the stream's. */
  copyOut(guestPath: string): Readable {
    const payload = new PayloadWriter().u32(0).string(absolute(guestPath), AGENT_MAX_PATH, 'guest path').finish();
    const proc = this.open(MessageType.COPY_OUT, payload);
    proc.stdin.end();
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    const errText = collect(proc.stderr);
    proc.stdout.pipe(out, { end: false });
    // The archive is complete only when the copying process says so.
    Promise.all([proc.exited, errText, new Promise((r) => proc.stdout.once('end', r))]).then(
      ([exit, text]) => (exit.exitCode === 0 ? out.end() : out.destroy(new VmrunError('guest', text.trim() || `copy of ${guestPath} failed (status ${exit.exitCode})`))),
      (e: Error) => out.destroy(e),
    );
    return out;
  }

  /** Closes the connection; open streams fail. */
  close(): void {
    this.socket.destroy();
  }

  /** Whether the connection has ended (a new one is needed). */
  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Streams open on this connection. */
  get openStreams(): number {
    return this.streams.size;
  }

  private onHello: ((frame: Frame) => void) | undefined;
  private onFailure: ((e: VmrunError) => void) | undefined;

  private open(type: MessageType, payload: Buffer): GuestProcess {
    if (this.closedError) throw this.closedError;
    let id = this.nextId;
    while (this.streams.has(id)) id = id >= 0x7fffffff ? 1 : id + 1;
    this.nextId = id >= 0x7fffffff ? 1 : id + 1;
    const stream = new AgentStream(id, (t, p) => this.send(id, t, p), () => this.streams.delete(id));
    this.streams.set(id, stream);
    this.send(id, type, payload);
    return stream;
  }

  private send(stream: number, type: MessageType, payload?: Buffer): void {
    if (!this.closedError) this.socket.write(encodeFrame(stream, type, payload));
  }

  private onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      this.fail(e as VmrunError);
      this.socket.destroy();
      return;
    }
    for (const frame of frames) {
      if (this.onHello && frame.stream === 0) {
        this.onHello(frame);
        continue;
      }
      if (frame.stream === 0) {
        if (frame.type === MessageType.ERROR) this.fail(new VmrunError('guest', `guest agent closed the connection: ${decodeError(frame.payload).message}`));
        continue;
      }
      this.streams.get(frame.stream)?.onFrame(frame);
    }
  }

  private fail(e: VmrunError): void {
    if (this.closedError) return;
    this.closedError = e;
    this.onFailure?.(e);
    for (const s of this.streams.values()) s.fail(e);
    this.streams.clear();
  }
}

/** One stream: a GuestProcess over EXEC, COPY_IN or COPY_OUT frames. */
class AgentStream implements GuestProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly started: Promise<number>;
  readonly exited: Promise<ExecExit>;
  private resolveStarted!: (pid: number) => void;
  private rejectStarted!: (e: Error) => void;
  private resolveExit!: (e: ExecExit) => void;
  private rejectExit!: (e: Error) => void;
  /** Bytes the agent still accepts on stdin. */
  private stdinCredit = AGENT_INITIAL_WINDOW;
  private stdinWaiter: (() => void) | undefined;
  /** Output bytes consumed but not yet granted back, per channel, while the reader is full. */
  private readonly owed = { [Channel.STDOUT]: 0, [Channel.STDERR]: 0 };
  private ended = false;

  constructor(
    readonly id: number,
    private readonly send: (type: MessageType, payload?: Buffer) => void,
    private readonly release: () => void,
  ) {
    this.started = new Promise((res, rej) => ((this.resolveStarted = res), (this.rejectStarted = rej)));
    this.exited = new Promise((res, rej) => ((this.resolveExit = res), (this.rejectExit = rej)));
    // A caller that awaits only one of them (or neither, after a kill) must not see an unhandled rejection.
    this.started.catch(() => {});
    this.exited.catch(() => {});
    this.stdout = new Readable({ read: () => this.grant(Channel.STDOUT) });
    this.stderr = new Readable({ read: () => this.grant(Channel.STDERR) });
    this.stdin = new Writable({
      highWaterMark: 64 * 1024,
      write: (chunk: Buffer, _enc, cb) => void this.writeInput(chunk).then(() => cb(), cb),
      final: (cb) => {
        if (!this.ended) this.send(MessageType.STDIN);
        cb();
      },
    });
    this.stdin.on('error', () => {});
  }

  resize(cols: number, rows: number): void {
    if (!this.ended) this.send(MessageType.RESIZE, new PayloadWriter().u16(clampSize(rows)).u16(clampSize(cols)).finish());
  }

  kill(signal: NodeJS.Signals | number = 'SIGTERM'): void {
    const n = typeof signal === 'number' ? signal : osConstants.signals[signal];
    if (n === undefined || n < 1 || n > 64) throw new VmrunError('usage', `unknown signal ${signal}`);
    if (!this.ended) this.send(MessageType.SIGNAL, new PayloadWriter().u32(n).finish());
  }

  onFrame(frame: Frame): void {
    const p = frame.payload;
    switch (frame.type) {
      case MessageType.STARTED:
        this.resolveStarted(p.length === 4 ? p.readUInt32BE(0) : 0);
        break;
      case MessageType.STDOUT:
        this.deliver(this.stdout, Channel.STDOUT, p);
        break;
      case MessageType.STDERR:
        this.deliver(this.stderr, Channel.STDERR, p);
        break;
      case MessageType.WINDOW:
        if (p.length === 8 && p.readUInt32BE(0) === Channel.STDIN) {
          this.stdinCredit += p.readUInt32BE(4);
          const wake = this.stdinWaiter;
          this.stdinWaiter = undefined;
          wake?.();
        }
        break;
      case MessageType.EXIT: {
        const signal = p.length === 8 ? p.readUInt32BE(4) : 0;
        this.finish();
        this.resolveStarted(0);
        this.resolveExit({ exitCode: p.length === 8 ? p.readUInt32BE(0) : 125, signal: signal ? (SIGNAL_NAMES.get(signal) ?? null) : null });
        break;
      }
      case MessageType.ERROR:
        this.fail(new VmrunError('guest', `guest agent: ${decodeError(p).message}`));
        break;
    }
  }

  fail(e: Error): void {
    if (this.ended) return;
    this.finish();
    this.rejectStarted(e);
    this.rejectExit(e);
    this.stdout.destroy(e);
    this.stderr.destroy(e);
    this.stdout.on('error', () => {});
    this.stderr.on('error', () => {});
  }

  private finish(): void {
    this.ended = true;
    this.release();
    this.stdinWaiter?.();
    if (!this.stdout.readableEnded) this.stdout.push(null);
    if (!this.stderr.readableEnded) this.stderr.push(null);
  }

  private deliver(readable: Readable, channel: typeof Channel.STDOUT | typeof Channel.STDERR, data: Buffer): void {
    if (data.length === 0) {
      readable.push(null);
      return;
    }
    // Grant the window back at once while the reader keeps up; otherwise when it asks for more.
    if (readable.push(data)) this.sendWindow(channel, data.length);
    else this.owed[channel] += data.length;
  }

  private grant(channel: typeof Channel.STDOUT | typeof Channel.STDERR): void {
    const n = this.owed[channel];
    if (n > 0) {
      this.owed[channel] = 0;
      this.sendWindow(channel, n);
    }
  }

  private sendWindow(channel: number, n: number): void {
    if (!this.ended) this.send(MessageType.WINDOW, new PayloadWriter().u32(channel).u32(n).finish());
  }

  private async writeInput(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      if (this.ended) return; // the program is gone: its input is dropped, like a closed pipe's
      if (this.stdinCredit === 0) {
        await new Promise<void>((r) => (this.stdinWaiter = r));
        continue;
      }
      const n = Math.min(chunk.length - off, this.stdinCredit, AGENT_MAX_PAYLOAD);
      this.stdinCredit -= n;
      this.send(MessageType.STDIN, chunk.subarray(off, off + n));
      off += n;
    }
  }
}

/** An EXEC (or RUN) request from the library's options: what is not given is the agent's default. */
function execRequest(argv: string[], opts: ExecOptions): ExecRequest {
  return {
    argv,
    env: opts.env ?? [],
    cwd: opts.cwd ?? '',
    user: opts.user ?? '',
    tty: opts.tty === true,
    stdin: opts.stdin === true,
    replaceEnv: opts.replaceEnv === true,
    rows: opts.rows ?? 0,
    cols: opts.cols ?? 0,
  };
}

function absolute(path: string): string {
  if (!path.startsWith('/')) throw new VmrunError('usage', `guest path "${path}" is not absolute`);
  return path;
}

/** Everything a readable carries, as text (bounded to the first 64 KiB). */
function collect(r: Readable): Promise<string> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    r.on('data', (d: Buffer) => {
      if (size < 65536) parts.push(d);
      size += d.length;
    });
    r.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    r.on('error', () => resolve(Buffer.concat(parts).toString('utf8')));
  });
}
