/**
 * Host-side peers of the network benches, on 127.0.0.1 only: a free port, a client
 * that waits (bounded) until a guest's published port is served, and a bulk writer
 * that honours back-pressure and notices a peer that closed.
 */
import { connect, createServer } from 'node:net';

/** A free port on 127.0.0.1. */
export async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * A socket connected to 127.0.0.1:`port`, retrying every `retryMs` until something
 * listens there (a guest's port, published once the guest serves it) or `deadline`
 * (a Date.now() value) passes. Socket errors after the connection are ignored: the
 * caller learns of a dead peer from writeBytes.
 */
export async function connectWhenListening(port, deadline, retryMs) {
  for (;;) {
    const sock = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const connected = await new Promise((resolve) => {
      sock.once('connect', () => resolve(true));
      sock.once('error', () => resolve(false));
    });
    if (connected) {
      sock.on('error', () => {});
      sock.resume();
      return sock;
    }
    sock.destroy();
    if (Date.now() > deadline) throw new Error(`nothing listened on published port ${port}`);
    await new Promise((r) => setTimeout(r, retryMs));
  }
}

/**
 * Writes `bytes` zero bytes in 1 MiB chunks, waiting for 'drain' when the socket asks;
 * returns how many were written before the peer closed (`bytes` when it did not). The
 * published port accepts at once and resets if the guest does not listen: this never
 * waits on a dead socket.
 */
export async function writeBytes(sock, bytes) {
  const chunk = Buffer.alloc(1 << 20);
  const closed = new Promise((r) => sock.once('close', () => r('closed')));
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!sock.write(chunk) && (await Promise.race([new Promise((r) => sock.once('drain', () => r('drain'))), closed])) === 'closed') return sent;
  }
  return bytes;
}
