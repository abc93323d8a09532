/**
 * Reaching the agent: straight over a unix socket (the agent's host mode, for tests),
 * or through a VM's hybrid vsock socket (Firecracker's model: `CONNECT <port>\n`,
 * answered `OK <host port>\n`, then the byte stream to the guest's listener).
 */
import { connect, type Socket } from 'node:net';
import { VmrunError } from '../errors.js';
import { AgentClient } from './client.js';
import { AGENT_VSOCK_PORT } from './protocol.js';

export const AGENT_CONNECT_TIMEOUT_MS = 5000;
/** The longest `OK ...` line the vsock device can send. */
const MAX_CONNECT_REPLY = 64;

async function openUnix(path: string, timeoutMs: number, what: string): Promise<Socket> {
  const socket = connect(path);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new VmrunError('guest', `${what} did not accept a connection within ${timeoutMs} ms`)), timeoutMs);
      socket.once('connect', () => (clearTimeout(timer), resolve()));
      socket.once('error', (e) => (clearTimeout(timer), reject(new VmrunError('guest', `cannot reach ${what}: ${e.message}`, { cause: e }))));
    });
  } catch (e) {
    socket.destroy();
    throw e;
  }
  return socket;
}

/** Connects to an agent serving a unix socket (`vmrun-init --agent --listen-unix PATH`). */
export async function connectAgentUnix(path: string, timeoutMs = AGENT_CONNECT_TIMEOUT_MS): Promise<AgentClient> {
  return AgentClient.handshake(await openUnix(path, timeoutMs, `the agent at ${path}`));
}

/**
 * Connects to a VM's agent through its hybrid vsock socket: CONNECT, wait (bounded)
 * for OK, then the agent handshake on the same stream.
 */
export async function connectAgentVsock(socketPath: string, opts: { port?: number; timeoutMs?: number } = {}): Promise<AgentClient> {
  const port = opts.port ?? AGENT_VSOCK_PORT;
  const timeoutMs = opts.timeoutMs ?? AGENT_CONNECT_TIMEOUT_MS;
  const socket = await openUnix(socketPath, timeoutMs, `the VM's vsock socket ${socketPath}`);
  let rest: Buffer;
  try {
    rest = await new Promise<Buffer>((resolve, reject) => {
      let got = Buffer.alloc(0);
      const done = (e?: Error, leftover?: Buffer): void => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        if (e) reject(e);
        else resolve(leftover!);
      };
      const timer = setTimeout(() => done(new VmrunError('guest', `the guest agent (vsock port ${port}) did not answer CONNECT within ${timeoutMs} ms`)), timeoutMs);
      const onClose = (): void => done(new VmrunError('guest', `the VM refused a connection to vsock port ${port} (is the guest agent running?)`));
      const onData = (chunk: Buffer): void => {
        got = Buffer.concat([got, chunk]);
        const nl = got.indexOf(0x0a);
        if (nl < 0) {
          if (got.length > MAX_CONNECT_REPLY) done(new VmrunError('guest', 'the vsock socket answered CONNECT with an over-long line'));
          return;
        }
        const line = got.subarray(0, nl).toString('latin1');
        if (!/^OK \d+$/.test(line)) return done(new VmrunError('guest', `the vsock socket answered CONNECT with "${line.slice(0, 40)}"`));
        done(undefined, got.subarray(nl + 1));
      };
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.write(`CONNECT ${port}\n`);
    });
  } catch (e) {
    socket.destroy();
    throw e;
  }
  return AgentClient.handshake(socket, rest, timeoutMs);
}

/**
 * Connects to the agent of a VM that may still be booting: retries (every 100 ms up
 * to 1 s apart) until the agent answers or `timeoutMs` has passed.
 */
export async function waitForAgent(socketPath: string, opts: { port?: number; timeoutMs?: number } = {}): Promise<AgentClient> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let delay = 100;
  for (;;) {
    try {
      return await connectAgentVsock(socketPath, { port: opts.port, timeoutMs: Math.max(1000, Math.min(AGENT_CONNECT_TIMEOUT_MS, deadline - Date.now())) });
    } catch (e) {
      if (Date.now() + delay > deadline) {
        throw new VmrunError('guest', `the guest agent did not answer within ${Math.round(timeoutMs / 1000)} s (${(e as Error).message})`, { cause: e });
      }
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 1000);
  }
}
