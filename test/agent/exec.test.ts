import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { AGENT_INITIAL_WINDOW, AGENT_MAGIC, AGENT_PROTOCOL_VERSION, MessageType, PayloadWriter, encodeFrame, FrameDecoder, decodeError } from '../../src/agent/protocol.js';
import { startHostAgent, type HostAgent } from './agent-process.js';
import type { AgentClient } from '../../src/agent/index.js';
import { runToEnd } from './streams.js';

let agent: HostAgent;
let client: AgentClient;

beforeAll(async () => {
  agent = await startHostAgent();
  client = await agent.connect();
});
afterAll(async () => {
  client?.close();
  await agent?.stop();
});

const run = runToEnd;

describe('exec over the agent protocol (host agent on a unix socket)', () => {
  it('keeps stdout and stderr apart', async () => {
    const r = await run(client.exec(['sh', '-c', 'echo out; echo err >&2; echo out2']));
    expect(r.out.toString()).toBe('out\nout2\n');
    expect(r.err.toString()).toBe('err\n');
    expect(r.exitCode).toBe(0);
  });

  it('passes exit codes through: 7, 127 for a missing program, 130 for SIGINT', async () => {
    expect((await run(client.exec(['sh', '-c', 'exit 7']))).exitCode).toBe(7);
    const missing = await run(client.exec(['no-such-program-xyz']));
    expect(missing.exitCode).toBe(127);
    expect(missing.err.toString()).toMatch(/no-such-program-xyz.*not found/);
    const interrupted = await run(client.exec(['sh', '-c', 'kill -INT $$']));
    expect(interrupted).toMatchObject({ exitCode: 130, signal: 'SIGINT' });
  });

  it('carries binary data byte for byte on both output streams, and stdin through to EOF', async () => {
    const input = randomBytes(3 << 20); // more than the window: flow control must cycle
    const p = client.exec(['sh', '-c', 'cat; head -c 100000 /dev/urandom >&2 | true; printf "\\000\\377" >&2'], { stdin: true });
    p.stdin.end(input);
    const r = await run(p);
    expect(r.exitCode).toBe(0);
    expect(r.out.length).toBe(input.length);
    expect(createHash('sha256').update(r.out).digest('hex')).toBe(createHash('sha256').update(input).digest('hex'));
    expect(r.err.subarray(-2)).toEqual(Buffer.from([0, 255]));
  });

  it('without stdin the program reads end of file at once', async () => {
    const r = await run(client.exec(['sh', '-c', 'cat; echo done']));
    expect(r.out.toString()).toBe('done\n');
  });

  it('a slow reader stops the program by back-pressure (bounded buffering)', async () => {
    const p = client.exec(['sh', '-c', 'head -c 50000000 /dev/zero; echo finished >&2']);
    p.stdout.pause();
    await new Promise((r) => setTimeout(r, 300));
    // The agent may send only the window: far less than the 50 MB the program wants to write.
    // The window, plus what the client grants back at once while its reader's buffer is under its mark.
    expect(p.stdout.readableLength).toBeLessThanOrEqual(AGENT_INITIAL_WINDOW + p.stdout.readableHighWaterMark);
    const reading = run(p);
    p.stdout.resume();
    const r = await reading;
    expect(r.out.length).toBe(50_000_000);
    expect(r.err.toString()).toBe('finished\n');
  });

  it('sets env, cwd, and replaces the environment on request', async () => {
    const r = await run(client.exec(['sh', '-c', 'echo "$GREETING|$(pwd)|${HOME:-nohome}"'], { env: ['GREETING=hi there'], cwd: '/tmp' }));
    expect(r.out.toString()).toBe(`hi there|/tmp|${process.env.HOME ?? '/'}\n`);
    const only = await run(client.exec(['/usr/bin/env'], { env: ['A=1'], replaceEnv: true }));
    expect(only.out.toString().split('\n').filter(Boolean).sort()).toEqual(['A=1', `HOME=${process.env.HOME ?? '/'}`].sort());
    const badCwd = await run(client.exec(['true'], { cwd: '/no/such/dir' }));
    expect(badCwd.exitCode).toBe(125);
  });

  it('switches user with docker -u rules', async () => {
    const r = await run(client.exec(['id', '-u'], { user: 'nobody' }));
    expect(r.out.toString().trim()).toBe('65534');
    const numeric = await run(client.exec(['id'], { user: '1234:5678' }));
    expect(numeric.out.toString()).toMatch(/uid=1234.*gid=5678/);
    const unknown = await run(client.exec(['true'], { user: 'no-such-user-q' }));
    expect(unknown.exitCode).toBe(125);
    expect(unknown.err.toString()).toMatch(/no-such-user-q/);
  });

  it('126 for a file that is not executable', async () => {
    const r = await run(client.exec(['/etc/passwd']));
    expect(r.exitCode).toBe(126);
  });

  it('delivers signals: kill(SIGTERM) ends sleep with 143', async () => {
    const p = client.exec(['sleep', '30']);
    await p.started;
    p.kill('SIGTERM');
    expect(await p.exited).toEqual({ exitCode: 143, signal: 'SIGTERM' });
  });

  it('runs under a pty: a resize is seen by stty size, and stdout carries the terminal', async () => {
    const p = client.exec(['sh', '-c', 'stty size; read line; stty size'], { tty: true, stdin: true, rows: 24, cols: 80 });
    const out: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    const seen = async (text: string): Promise<void> => {
      const deadline = Date.now() + 5000;
      while (!Buffer.concat(out).toString().includes(text)) {
        if (Date.now() > deadline) throw new Error(`never saw ${text}: ${Buffer.concat(out).toString()}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await seen('24 80');
    p.resize(132, 50);
    p.stdin.write('go\n');
    await seen('50 132');
    expect((await p.exited).exitCode).toBe(0);
  });

  it('runs many streams at once on one connection', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => run(client.exec(['sh', '-c', `echo ${i}; exit ${i % 5}`]))));
    results.forEach((r, i) => expect([r.out.toString(), r.exitCode]).toEqual([`${i}\n`, i % 5]));
    expect(client.openStreams).toBe(0);
  });
});

/** A raw connection for malformed input: what the agent answers before it closes. */
async function rawExchange(frames: Buffer[]): Promise<{ errors: string[]; closed: boolean }> {
  const socket = connect(agent.socket);
  const decoder = new FrameDecoder();
  const errors: string[] = [];
  socket.on('data', (d: Buffer) => {
    for (const f of decoder.push(d)) if (f.type === MessageType.ERROR) errors.push(decodeError(f.payload).message);
  });
  // The agent may close while our input is unread: a reset is one way of closing.
  socket.on('error', () => {});
  const closed = new Promise<boolean>((r) => socket.on('close', () => r(true)));
  for (const f of frames) socket.write(f);
  const result = await Promise.race([closed, new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);
  socket.destroy();
  return { errors, closed: result };
}

const hello = (): Buffer => encodeFrame(0, MessageType.HELLO, new PayloadWriter().u32(AGENT_MAGIC).u16(1).u16(1).finish());

describe('malformed input closes only that connection', () => {
  it('refuses a frame before HELLO, an oversized frame, garbage, a bad EXEC and input beyond the window', async () => {
    const running = client.exec(['sh', '-c', 'read x; echo survived $x'], { stdin: true });
    await running.started;

    const before = await rawExchange([encodeFrame(1, MessageType.EXEC, Buffer.alloc(4))]);
    expect(before).toMatchObject({ closed: true, errors: [expect.stringMatching(/first frame must be HELLO/)] });

    const huge = Buffer.alloc(12);
    huge.writeUInt32BE(0x7fffffff, 0);
    expect(await rawExchange([hello(), huge])).toMatchObject({ closed: true, errors: [expect.stringMatching(/limit/)] });

    expect((await rawExchange([Buffer.from('GET / HTTP/1.1\r\n\r\n')])).closed).toBe(true);

    const badExec = new PayloadWriter().u32(0).u16(0).u16(0).u32(0).u32(0).u32(9999999).finish();
    expect(await rawExchange([hello(), encodeFrame(1, MessageType.EXEC, badExec)])).toMatchObject({ closed: true, errors: [expect.stringMatching(/EXEC/)] });

    const flags = encodeFrame(0, MessageType.HELLO, Buffer.alloc(8));
    flags[9] = 1;
    expect((await rawExchange([flags])).closed).toBe(true);

    const catExec = new PayloadWriter().u32(2).u16(0).u16(0).string('', 256, 'user').string('', 4095, 'cwd').strings(['sleep', '100'], 10, 'argv').strings([], 10, 'env').finish();
    const flood = Array.from({ length: (2 * AGENT_INITIAL_WINDOW) / 262144 + 2 }, () => encodeFrame(1, MessageType.STDIN, Buffer.alloc(262144)));
    expect(await rawExchange([hello(), encodeFrame(1, MessageType.EXEC, catExec), ...flood])).toMatchObject({
      closed: true,
      errors: [expect.stringMatching(/beyond the granted window/)],
    });

    // The agent and its other connection are unaffected.
    running.stdin.end('yes\n');
    const r = await run(running);
    expect(r.out.toString()).toBe('survived yes\n');
    expect(agent.process.exitCode).toBeNull();
  });

  it('answers a version it does not speak with UNSUPPORTED', async () => {
    const newer = encodeFrame(0, MessageType.HELLO, new PayloadWriter().u32(AGENT_MAGIC).u16(AGENT_PROTOCOL_VERSION + 1).u16(AGENT_PROTOCOL_VERSION + 2).finish());
    const speaks = new RegExp(`versions 1 to ${AGENT_PROTOCOL_VERSION}`);
    expect(await rawExchange([newer])).toMatchObject({ closed: true, errors: [expect.stringMatching(speaks)] });
    const backwards = encodeFrame(0, MessageType.HELLO, new PayloadWriter().u32(AGENT_MAGIC).u16(2).u16(1).finish());
    expect(await rawExchange([backwards])).toMatchObject({ closed: true, errors: [expect.stringMatching(speaks)] });
  });
});
