import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vmrun } from '../helpers/cli.js';
import { startHostAgent, type HostAgent } from './agent-process.js';
import { startVsockRelay } from './vsock-relay.js';
import { VmRegistry } from '../../src/vmhost/registry.js';

// Each CLI run starts Node (seconds on a loaded machine): a test of several gets room.
const CLI_TEST_MS = 180_000;

// `vmrun exec` and `vmrun cp` against a registered background VM whose vsock socket
// relays to the real agent running on this host (no VM: its "guest" paths are ours).
let agent: HostAgent;
let runtimeDir: string;
let work: string;
const servers: Server[] = [];
const env = (): NodeJS.ProcessEnv => ({ VMRUN_RUNTIME_DIR: runtimeDir });

beforeAll(async () => {
  agent = await startHostAgent();
  runtimeDir = mkdtempSync(join(tmpdir(), 'vmrt-'));
  work = mkdtempSync(join(tmpdir(), 'vmrun-cli-'));
  const registry = await VmRegistry.open(env());
  const record = await registry.create({ name: 'box', origin: 'run', image: 'none' });
  const paths = registry.paths(record.id);
  // A live host process is a pid plus a control socket that accepts connections.
  const control = createServer((s) => s.end());
  await new Promise<void>((r) => control.listen(paths.controlSocket, r));
  servers.push(control, await startVsockRelay(paths.vsockSocket, agent.socket));
  await registry.write({ ...record, pid: process.pid, state: 'running' });
}, 60_000);

afterAll(async () => {
  for (const s of servers) s.close();
  await agent?.stop();
  rmSync(runtimeDir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

describe('vmrun exec', () => {
  it('keeps stdout and stderr apart and passes the exit status through', async () => {
    const r = await vmrun(['exec', 'box', 'sh', '-c', 'echo out; echo err >&2; exit 7'], { env: env() });
    expect(r).toMatchObject({ status: 7, stdout: 'out\n', stderr: 'err\n' });
  }, CLI_TEST_MS);

  it('-i sends stdin through to its end; -e, -w and -u apply', async () => {
    const r = await vmrun(['exec', '-i', '-e', 'A=b c', '-w', '/tmp', '-u', 'nobody', 'box', 'sh', '-c', 'cat; echo "$A $(pwd) $(id -u)"'], { env: env(), input: 'piped\n' });
    expect(r).toMatchObject({ status: 0, stdout: 'piped\nb c /tmp 65534\n' });
  }, CLI_TEST_MS);

  it('127 for a missing command, 125 with one line for an unknown VM', async () => {
    expect((await vmrun(['exec', 'box', 'no-such-cmd-zz'], { env: env() })).status).toBe(127);
    const unknown = await vmrun(['exec', 'nope', 'true'], { env: env() });
    expect(unknown.status).toBe(125);
    expect(unknown.stderr).toBe('vmrun: no such VM: nope\n');
  }, CLI_TEST_MS);
});

describe('vmrun cp', () => {
  it('copies a directory in and back out, and tar streams with -', async () => {
    const src = join(work, 'site');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'sub', 'index.html'), '<p>hi</p>');
    const guest = join(work, 'guest');
    mkdirSync(guest);
    expect(await vmrun(['cp', src, `box:${guest}`], { env: env() })).toMatchObject({ status: 0, stderr: '' });
    expect(readFileSync(join(guest, 'site', 'sub', 'index.html'), 'utf8')).toBe('<p>hi</p>');
    expect(await vmrun(['cp', `box:${join(guest, 'site')}`, join(work, 'copy')], { env: env() })).toMatchObject({ status: 0 });
    expect(statSync(join(work, 'copy', 'sub', 'index.html')).size).toBe(9);
    const out = await vmrun(['cp', `box:${join(guest, 'site', 'sub', 'index.html')}`, '-'], { env: env() });
    expect(out.status).toBe(0);
    expect(out.stdout.slice(0, 10)).toBe('index.html');
    expect(out.stdout).toContain('<p>hi</p>');
  }, CLI_TEST_MS);

  it('fails with one line and 125 for a missing source or two host paths', async () => {
    const missing = await vmrun(['cp', `box:${join(work, 'nothing-here')}`, work], { env: env() });
    expect(missing.status).toBe(125);
    expect(missing.stderr).toMatch(/^vmrun: copy-out .*nothing-here.*No such file or directory\n$/);
    const both = await vmrun(['cp', '/etc/hostname', work], { env: env() });
    expect(both).toMatchObject({ status: 125, stderr: expect.stringMatching(/exactly one of SRC and DST/) });
  }, CLI_TEST_MS);
});
