// Protocol version 2 against the real agent (vmrun-init's host mode on a unix socket):
// RUN hands over a VM's workload, whose end ends the agent (in a guest: the VM) with
// its status once the client has closed; IDENTITY is decoded and refused cleanly.
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { AGENT_MAGIC, AGENT_PROTOCOL_VERSION, MessageType, VolumesOp, PayloadWriter, encodeFrame, encodeIdentity, FrameDecoder, decodeError, type Frame } from '../../src/agent/protocol.js';
import { startHostAgent, type HostAgent } from './agent-process.js';
import { runToEnd } from './streams.js';

let agent: HostAgent | undefined;
afterEach(async () => {
  await agent?.stop();
  agent = undefined;
});

function exitOf(a: HostAgent): Promise<number | null> {
  return a.process.exitCode !== null ? Promise.resolve(a.process.exitCode) : new Promise((r) => a.process.once('exit', (code) => r(code)));
}

/** A raw connection that speaks `versions` in HELLO and collects frames. */
async function rawConnection(a: HostAgent, versions: [number, number]) {
  const socket = connect(a.socket);
  await new Promise((r) => socket.once('connect', r));
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  let wake: (() => void) | undefined;
  socket.on('data', (d: Buffer) => {
    frames.push(...decoder.push(d));
    wake?.();
  });
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  const next = async (): Promise<Frame> => {
    while (frames.length === 0) await Promise.race([new Promise<void>((r) => (wake = r)), closed.then(() => { throw new Error('closed'); })]);
    return frames.shift()!;
  };
  socket.write(encodeFrame(0, MessageType.HELLO, new PayloadWriter().u32(AGENT_MAGIC).u16(versions[0]).u16(versions[1]).finish()));
  const hello = await next();
  return { socket, next, closed, hello };
}

describe('RUN: the VM workload over the agent', () => {
  it('streams the workload apart, then ends the agent with its status after the client closes', async () => {
    agent = await startHostAgent();
    const client = await agent.connect();
    expect(client.version).toBe(AGENT_PROTOCOL_VERSION);
    const p = client.run(['sh', '-c', 'cat; echo err >&2; exit 7'], { stdin: true });
    p.stdin.end('from stdin\n');
    const r = await runToEnd(p);
    expect(r).toMatchObject({ exitCode: 7, out: Buffer.from('from stdin\n'), err: Buffer.from('err\n') });
    // The status is known, but the agent waits for the client to take every byte.
    await new Promise((res) => setTimeout(res, 200));
    expect(agent.process.exitCode).toBeNull();
    client.close();
    expect(await exitOf(agent)).toBe(7);
  });

  it('creates the working directory, applies the user, and runs only once', async () => {
    agent = await startHostAgent();
    const client = await agent.connect();
    const dir = `${agent.dir}/made/by/run`;
    const p = client.run(['sh', '-c', 'pwd; exit 3'], { cwd: dir });
    const second = client.run(['true']);
    await expect(second.exited).rejects.toThrow(/already been started/);
    expect((await runToEnd(p)).out.toString()).toBe(`${dir}\n`);
    client.close();
    expect(await exitOf(agent)).toBe(3);
  });

  it('kills the workload and ends with 137 when the client goes away first', async () => {
    agent = await startHostAgent();
    const client = await agent.connect();
    const p = client.run(['sleep', '30']);
    await p.started;
    client.close();
    expect(await exitOf(agent)).toBe(137);
  });

  it('is not part of version 1: a version-1 connection sending RUN is closed as malformed', async () => {
    agent = await startHostAgent();
    const c = await rawConnection(agent, [1, 1]);
    expect(c.hello.payload.readUInt16BE(4)).toBe(1);
    c.socket.write(encodeFrame(1, MessageType.RUN, Buffer.alloc(0)));
    const f = await c.next();
    expect(f.type).toBe(MessageType.ERROR);
    expect(decodeError(f.payload).message).toMatch(/malformed or unexpected frame \(type 14/);
    await c.closed;
    expect(agent.process.exitCode).toBeNull();
  });
});

describe('IDENTITY', () => {
  it('refuses a payload that does not decode (entropy length past the end) and closes only that connection', async () => {
    agent = await startHostAgent();
    const c = await rawConnection(agent, [2, 2]);
    const bad = new PayloadWriter().u32(0).u32(0).u32(0).u32(400).finish(); // 400 entropy bytes announced, none sent
    c.socket.write(encodeFrame(1, MessageType.IDENTITY, bad));
    const f = await c.next();
    expect(decodeError(f.payload).message).toMatch(/IDENTITY payload does not decode/);
    await c.closed;
    const other = await agent.connect();
    expect((await runToEnd(other.exec(['true']))).exitCode).toBe(0);
    other.close();
  });

  it('answers a well-formed request on its stream; the host mode refuses to touch the host', async () => {
    agent = await startHostAgent();
    const c = await rawConnection(agent, [2, 2]);
    const payload = encodeIdentity({ realtimeNs: 1n, entropy: Buffer.alloc(32, 1), hostname: 'clone-1', mac: '02:00:00:00:00:01' });
    c.socket.write(encodeFrame(5, MessageType.IDENTITY, payload));
    const f = await c.next();
    expect(f.stream).toBe(5);
    expect(f.type).toBe(MessageType.ERROR);
    expect(decodeError(f.payload).message).toBe('the identity is only refreshed in a guest');
    c.socket.destroy();
  });
});

describe('VOLUMES', () => {
  it('is not part of version 2: a version-2 connection sending it is closed as malformed', async () => {
    agent = await startHostAgent();
    const c = await rawConnection(agent, [2, 2]);
    c.socket.write(encodeFrame(1, MessageType.VOLUMES, new PayloadWriter().u32(VolumesOp.DETACH).finish()));
    const f = await c.next();
    expect(decodeError(f.payload).message).toMatch(/malformed or unexpected frame \(type 16/);
    await c.closed;
  });

  it('refuses an unknown operation; detach and attach answer EXIT 0 where there are no volumes (the host mode)', async () => {
    agent = await startHostAgent();
    const bad = await rawConnection(agent, [3, 3]);
    bad.socket.write(encodeFrame(1, MessageType.VOLUMES, new PayloadWriter().u32(7).finish()));
    expect(decodeError((await bad.next()).payload).message).toMatch(/VOLUMES payload is not one known operation/);
    await bad.closed;
    const client = await agent.connect();
    await client.volumes('detach');
    await client.volumes('attach');
    expect((await runToEnd(client.exec(['true']))).exitCode).toBe(0);
    client.close();
  });
});
