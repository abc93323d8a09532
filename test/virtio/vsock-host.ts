/**
 * The host side of the vsock tests: a client for the VM's socket (Firecracker's
 * "CONNECT <port>\n" / "OK <hostport>\n" handshake) and the 4 KiB blocks the vsock
 * test guest sends.
 */
import { connect, type Socket } from 'node:net';

/** What a host client got from one connection to the VM's socket. */
export interface HostConnection {
  /** The handshake reply line ("OK 1073741824"), or undefined if the socket closed before one. */
  okLine: string | undefined;
  /** Every byte after the handshake line, until the VM closed the socket. */
  received: Buffer;
}

/**
 * Connects to the VM's vsock socket, asks for guest `port`, sends `data` (then
 * half-closes) once the handshake succeeded, and collects the reply until the
 * VM closes the connection. Bounded by `timeoutMs`.
 */
export function connectToGuest(socketPath: string, port: number, data: Buffer, timeoutMs = 20_000): Promise<HostConnection> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(socketPath);
    let buffered = Buffer.alloc(0);
    let okLine: string | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`vsock connection to guest port ${port} did not finish within ${timeoutMs} ms (ok: ${okLine}, ${buffered.length} bytes)`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`CONNECT ${port}\n`));
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (okLine === undefined) {
        const nl = buffered.indexOf(10);
        if (nl < 0) return;
        okLine = buffered.subarray(0, nl).toString();
        buffered = buffered.subarray(nl + 1);
        socket.end(data);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ okLine, received: buffered });
    });
  });
}

export const BLOCK = 4096;

/** Block k as the vsock guest sends it: k (u32 LE), then bytes (i * 7 + 3) & 0xff for i = 4..4095. */
export function expectedBlock(k: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  for (let i = 4; i < BLOCK; i++) b[i] = (i * 7 + 3) & 0xff;
  b.writeUInt32LE(k, 0);
  return b;
}
