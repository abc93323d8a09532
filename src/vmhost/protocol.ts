/**
 * The control protocol between vmrun commands and a VM's host process: one JSON
 * object per line over the VM's unix socket, a request then its response. After a
 * successful `attach` the connection stops being line-based and carries raw console
 * bytes both ways (guest output to the client, client input to the guest).
 */
import type { Socket } from 'node:net';
import type { NativeStats } from '../native/addon.js';
import type { VmrunErrorKind } from '../errors.js';

/** What a client can ask of a VM's host process. */
export type ControlRequest =
  | { op: 'status' }
  | { op: 'stop' }
  | { op: 'pause' }
  | { op: 'resume' }
  | { op: 'attach' }
  | { op: 'snapshot'; path: string; stop?: boolean };

/** The operations of the protocol. */
export type ControlOp = ControlRequest['op'];

/** How a guest ended, as plain data (MachineExit without its raw fault details). */
export interface VmExit {
  reason: string;
  exitCode: number;
  message: string;
}

/** A running VM as its host process sees it. */
export interface LiveStatus {
  id: string;
  pid: number;
  state: 'running' | 'paused';
  stats: NativeStats;
}

/** The result each operation answers with. */
export interface ControlResults {
  status: LiveStatus;
  stop: VmExit;
  pause: Record<string, never>;
  resume: Record<string, never>;
  attach: Record<string, never>;
  /** Whatever the snapshot function reports (file, sizes, timings). */
  snapshot: object;
}

/** One response line: a result, or a failure the client rethrows as a VmrunError. */
export type ControlResponse<Op extends ControlOp = ControlOp> =
  | { ok: true; result: ControlResults[Op] }
  | { ok: false; error: { kind: VmrunErrorKind; message: string } };

/** A request or response line longer than this is a protocol error, not something to buffer. */
export const MAX_LINE_BYTES = 1 << 20;

/** Parses one request line; undefined when it is not a request this protocol knows. */
export function parseRequest(line: string): ControlRequest | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const req = value as { op?: unknown; path?: unknown; stop?: unknown };
  switch (req.op) {
    case 'status':
    case 'stop':
    case 'pause':
    case 'resume':
    case 'attach':
      return { op: req.op };
    case 'snapshot':
      if (typeof req.path !== 'string' || req.path === '') return undefined;
      if (req.stop !== undefined && typeof req.stop !== 'boolean') return undefined;
      return { op: 'snapshot', path: req.path, stop: req.stop === true };
    default:
      return undefined;
  }
}

/** Splits what a socket receives into lines until `release()`, which hands back the unread bytes. */
export interface LineReader {
  /** Stops reading lines; returns bytes received after the last line (the start of a raw stream). */
  release(): Buffer;
}

/**
 * Reads newline-terminated lines from `socket`, calling `onLine` for each; a line
 * over MAX_LINE_BYTES calls `onOverflow` and stops reading.
 */
export function readLines(socket: Socket, onLine: (line: string) => void, onOverflow: () => void): LineReader {
  let pending: Buffer = Buffer.alloc(0);
  let released = false;
  const onData = (chunk: Buffer): void => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let newline: number;
    while (!released && (newline = pending.indexOf(0x0a)) >= 0) {
      const line = pending.subarray(0, newline).toString('utf8');
      pending = pending.subarray(newline + 1);
      onLine(line);
    }
    if (!released && pending.length > MAX_LINE_BYTES) {
      socket.off('data', onData);
      onOverflow();
    }
  };
  socket.on('data', onData);
  return {
    release(): Buffer {
      released = true;
      socket.off('data', onData);
      const rest = pending;
      pending = Buffer.alloc(0);
      return rest;
    },
  };
}
