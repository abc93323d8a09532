/**
 * The guest agent's wire protocol, versions 1 and 2 (docs/agent-protocol.md). These
 * constants mirror guest/init/src/agent_protocol.h; test/agent/protocol.test.ts
 * reads that header and checks every one of them.
 */
import { VmrunError } from '../errors.js';

/** The guest's AF_VSOCK port the agent listens on. */
export const AGENT_VSOCK_PORT = 1024;
export const AGENT_MAGIC = 0x564d4147;
/** The newest version spoken (2 adds RUN and IDENTITY, 3 VOLUMES), and the oldest still served. */
export const AGENT_PROTOCOL_VERSION = 3;
export const AGENT_PROTOCOL_MIN_VERSION = 1;
export const AGENT_HEADER_BYTES = 12;
export const AGENT_MAX_PAYLOAD = 262144;
export const AGENT_MAX_SESSIONS = 32;
export const AGENT_MAX_ARGS = 4096;
export const AGENT_MAX_ENV = 4096;
export const AGENT_MAX_PATH = 4095;
export const AGENT_MAX_USER = 256;
export const AGENT_INITIAL_WINDOW = 1048576;
export const AGENT_MAX_GROUPS = 64;
export const AGENT_MAX_ENTROPY = 512;
export const AGENT_MAX_HOSTNAME = 64;

/** Message types (the header's type byte). */
export const MessageType = {
  HELLO: 1,
  EXEC: 2,
  COPY_IN: 3,
  COPY_OUT: 4,
  STARTED: 5,
  STDIN: 6,
  STDOUT: 7,
  STDERR: 8,
  WINDOW: 9,
  RESIZE: 10,
  SIGNAL: 11,
  EXIT: 12,
  ERROR: 13,
  RUN: 14,
  IDENTITY: 15,
  VOLUMES: 16,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** VOLUMES' operation: unmount the guest's volumes before a save, mount them again after. */
export const VolumesOp = { DETACH: 1, ATTACH: 2 } as const;
export type VolumesOp = (typeof VolumesOp)[keyof typeof VolumesOp];

export const ExecFlags = { TTY: 1, STDIN: 2, REPLACE_ENV: 4 } as const;
export const CopyFlags = { INTO_DIR: 1 } as const;
export const Channel = { STDIN: 0, STDOUT: 1, STDERR: 2 } as const;
export const ErrorCode = { PROTOCOL: 1, LIMIT: 2, UNSUPPORTED: 3, FAILED: 4 } as const;

/** One decoded frame. */
export interface Frame {
  stream: number;
  type: number;
  payload: Buffer;
}

/** Encodes one frame; the payload must be within AGENT_MAX_PAYLOAD. */
export function encodeFrame(stream: number, type: MessageType, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  if (payload.length > AGENT_MAX_PAYLOAD) throw new VmrunError('usage', `agent frame of ${payload.length} bytes exceeds the protocol's ${AGENT_MAX_PAYLOAD}`);
  const frame = Buffer.allocUnsafe(AGENT_HEADER_BYTES + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.writeUInt32BE(stream, 4);
  frame.writeUInt8(type, 8);
  frame.writeUInt8(0, 9);
  frame.writeUInt16BE(0, 10);
  frame.set(payload, AGENT_HEADER_BYTES);
  return frame;
}

/**
 * Splits a byte stream into frames. Holds at most one frame's bytes; a header that
 * announces more than AGENT_MAX_PAYLOAD, or nonzero flag bits, throws.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.buffered < AGENT_HEADER_BYTES) break;
      const head = this.peek(AGENT_HEADER_BYTES);
      const length = head.readUInt32BE(0);
      if (length > AGENT_MAX_PAYLOAD) throw new VmrunError('guest', `agent sent a frame of ${length} bytes (limit ${AGENT_MAX_PAYLOAD})`);
      if (head.readUInt8(9) !== 0 || head.readUInt16BE(10) !== 0) throw new VmrunError('guest', 'agent sent a frame with nonzero flags');
      if (this.buffered < AGENT_HEADER_BYTES + length) break;
      const bytes = this.take(AGENT_HEADER_BYTES + length);
      frames.push({ stream: bytes.readUInt32BE(4), type: bytes.readUInt8(8), payload: bytes.subarray(AGENT_HEADER_BYTES) });
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered -= n;
    return out;
  }
}

/** Builds payloads of u16/u32 fields and length-prefixed strings. */
export class PayloadWriter {
  private parts: Buffer[] = [];

  u16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16BE(v);
    this.parts.push(b);
    return this;
  }

  u32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }

  string(s: string, max: number, what: string): this {
    const bytes = Buffer.from(s, 'utf8');
    if (bytes.includes(0)) throw new VmrunError('usage', `${what} contains a NUL byte`);
    if (bytes.length > max) throw new VmrunError('usage', `${what} is ${bytes.length} bytes (limit ${max})`);
    this.u32(bytes.length);
    this.parts.push(bytes);
    return this;
  }

  strings(list: readonly string[], maxCount: number, what: string): this {
    if (list.length > maxCount) throw new VmrunError('usage', `${list.length} ${what} entries (limit ${maxCount})`);
    this.u32(list.length);
    for (const s of list) this.string(s, AGENT_MAX_PAYLOAD, what);
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** An EXEC request, as the protocol carries it. */
export interface ExecRequest {
  argv: readonly string[];
  env: readonly string[];
  cwd: string;
  user: string;
  tty: boolean;
  stdin: boolean;
  replaceEnv: boolean;
  rows: number;
  cols: number;
}

export function encodeExec(r: ExecRequest): Buffer {
  if (r.argv.length === 0 || r.argv[0] === '') throw new VmrunError('usage', 'exec needs a command');
  if (r.cwd !== '' && !r.cwd.startsWith('/')) throw new VmrunError('usage', `working directory "${r.cwd}" is not an absolute path`);
  for (const e of r.env) if (!/^[^=]+=/.test(e)) throw new VmrunError('usage', `environment entry "${e}" is not KEY=VALUE`);
  const flags = (r.tty ? ExecFlags.TTY : 0) | (r.stdin ? ExecFlags.STDIN : 0) | (r.replaceEnv ? ExecFlags.REPLACE_ENV : 0);
  const payload = new PayloadWriter()
    .u32(flags)
    .u16(clampSize(r.rows))
    .u16(clampSize(r.cols))
    .string(r.user, AGENT_MAX_USER, 'user')
    .string(r.cwd, AGENT_MAX_PATH, 'working directory')
    .strings(r.argv, AGENT_MAX_ARGS, 'argv')
    .strings(r.env, AGENT_MAX_ENV, 'env')
    .finish();
  if (payload.length > AGENT_MAX_PAYLOAD) throw new VmrunError('usage', `command and environment take ${payload.length} bytes (limit ${AGENT_MAX_PAYLOAD})`);
  return payload;
}

/** A RUN request: the VM's workload; EXEC's fields plus docker's --group-add. */
export interface RunRequest extends ExecRequest {
  groupAdd: readonly string[];
}

export function encodeRun(r: RunRequest): Buffer {
  for (const g of r.groupAdd) if (g === '') throw new VmrunError('usage', 'an added group is empty');
  const payload = Buffer.concat([encodeExec(r), new PayloadWriter().strings(r.groupAdd, AGENT_MAX_GROUPS, 'group-add').finish()]);
  if (payload.length > AGENT_MAX_PAYLOAD) throw new VmrunError('usage', `command and environment take ${payload.length} bytes (limit ${AGENT_MAX_PAYLOAD})`);
  return payload;
}

/** An IDENTITY request: what a restored clone must not share with its siblings. */
export interface IdentityRequest {
  /** The host's wall clock in ns since the epoch (0n: leave the guest's clock). */
  realtimeNs: bigint;
  /** Mixed into the guest's entropy pool, which then reseeds. */
  entropy: Uint8Array;
  /** "" keeps the hostname. */
  hostname: string;
  /** eth0's new address, "aa:bb:cc:dd:ee:ff"; "" keeps it. */
  mac: string;
}

export function encodeIdentity(r: IdentityRequest): Buffer {
  if (r.entropy.length > AGENT_MAX_ENTROPY) throw new VmrunError('usage', `${r.entropy.length} entropy bytes (limit ${AGENT_MAX_ENTROPY})`);
  if (r.mac !== '' && !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(r.mac)) throw new VmrunError('usage', `MAC "${r.mac}" is not aa:bb:cc:dd:ee:ff`);
  const entropyLength = Buffer.allocUnsafe(4);
  entropyLength.writeUInt32BE(r.entropy.length);
  return Buffer.concat([
    new PayloadWriter().u32(0).u32(Number(r.realtimeNs >> 32n)).u32(Number(r.realtimeNs & 0xffffffffn)).finish(),
    entropyLength,
    r.entropy,
    new PayloadWriter().string(r.hostname, AGENT_MAX_HOSTNAME, 'hostname').string(r.mac, 17, 'MAC').finish(),
  ]);
}

export function clampSize(n: number): number {
  return Math.max(0, Math.min(65535, Math.floor(n)));
}

/** Decodes an ERROR payload. */
export function decodeError(payload: Buffer): { code: number; message: string } {
  if (payload.length < 8) return { code: 0, message: 'malformed ERROR frame' };
  const len = Math.min(payload.readUInt32BE(4), payload.length - 8);
  return { code: payload.readUInt32BE(0), message: payload.subarray(8, 8 + len).toString('utf8') };
}
