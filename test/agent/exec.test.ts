import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostAgent, type HostAgent } from './agent-process.js';
import type { AgentClient, GuestProcess } from '../../src/agent/index.js';

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

function readAll(r: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    r.on('data', (d: Buffer) => parts.push(d));
    r.on('end', () => resolve(Buffer.concat(parts)));
    r.on('error', reject);
  });
}

async function run(p: GuestProcess): Promise<{ out: Buffer; err: Buffer; exitCode: number; signal: string | null }> {
  const [out, err, exit] = await Promise.all([readAll(p.stdout), readAll(p.stderr), p.exited]);
  return { out, err, ...exit };
}

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
});
