/**
 * The guest agent in a real Linux guest, over virtio-vsock: exec into a background VM
 * while its workload keeps running (separate streams byte for byte, exit codes, stdin
 * EOF), `vmrun exec -it` under a pty with a resize, docker cp of 1000 files and a
 * 20 MB file both ways (100 MB in the host test), and a VM saved with an exec session open, restored, and
 * exec'd into again.
 * Run: scripts/e2e.sh test/e2e/agent.test.ts
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { eventually } from '../vmhost/vm-env.js';
import { describeTree } from '../agent/tree.js';
import { runToEnd } from '../agent/streams.js';
import { busyboxUnavailableReason, writeBusyboxLayout } from './helpers/busybox-image.js';
import { PRINT_SIZE_PER_LINE, resizeSeenByGuest } from './helpers/pty.js';
import { VmrunTestEnv } from './helpers/vmrun-env.js';
import { VmRegistry } from '../../src/vmhost/registry.js';
import { connectVmAgent } from '../../src/vmhost/agent-connection.js';
import { copyGuestToHost, copyHostToGuest, type AgentClient, type GuestProcess } from '../../src/agent/index.js';

/** A vmrun command in L1 takes 5-20 s (Node's start under TCG); a boot adds a few. */
const COMMAND_TIMEOUT_MS = 150_000;

/** The workload: a counter in /tmp/count, once a second, for as long as the VM runs. */
const WORKLOAD = 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; echo "count $i"; sleep 1; done';

const skipReason = busyboxUnavailableReason();
if (skipReason) console.warn(`agent e2e skipped: ${skipReason}`);

let env: VmrunTestEnv;
let layout: string;
let work: string;
let registry: VmRegistry;

beforeAll(async () => {
  if (skipReason) return;
  env = new VmrunTestEnv();
  layout = mkdtempSync(join(tmpdir(), 'vmrun-e2e-agent-layout-'));
  work = mkdtempSync(join(env.root, 'work-'));
  await writeBusyboxLayout(layout, 'v1');
  registry = await VmRegistry.open(env.env);
}, 60_000);

afterAll(() => {
  env?.cleanup();
  if (layout) rmSync(layout, { recursive: true, force: true });
});

async function run(p: GuestProcess, input?: Buffer): ReturnType<typeof runToEnd> {
  p.stdin.end(input);
  return runToEnd(p);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe.skipIf(skipReason !== undefined)('the guest agent in a real guest', () => {
  let agent: AgentClient;

  it('execs beside a running workload: separate streams, binary data, stdin EOF, exit codes', async () => {
    const started = await env.run(['run', '-d', '-q', '-m', '512M', '--name', 'box', `oci:${layout}:v1`, 'sh', '-c', WORKLOAD], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(started.status, started.stderr).toBe(0);
    ({ agent } = await connectVmAgent('box', { registry, timeoutMs: 120_000 }));

    const streams = await run(agent.exec(['sh', '-c', 'echo out; echo err >&2; echo out2; exit 7']));
    expect([streams.out.toString(), streams.err.toString(), streams.exitCode]).toEqual(['out\nout2\n', 'err\n', 7]);
    const data = randomBytes(1 << 20);
    const toStdout = await run(agent.exec(['cat'], { stdin: true }), data);
    expect(sha(toStdout.out)).toBe(sha(data));
    expect(toStdout.err.length).toBe(0);
    const toStderr = await run(agent.exec(['sh', '-c', 'cat >&2'], { stdin: true }), data);
    expect(sha(toStderr.err)).toBe(sha(data));
    expect(toStderr.out.length).toBe(0);
    expect((await run(agent.exec(['true']))).exitCode).toBe(0);
    expect((await run(agent.exec(['no-such-program']))).exitCode).toBe(127);
    expect(await run(agent.exec(['sh', '-c', 'kill -INT $$']))).toMatchObject({ exitCode: 130, signal: 'SIGINT' });

    // The workload went on counting throughout.
    const count = async (): Promise<number> => Number((await run(agent.exec(['cat', '/tmp/count']))).out.toString());
    const first = await count();
    await eventually(async () => ((await count()) > first + 1 ? true : undefined), 'the workload counting on', 60_000);
    const logs = await env.run(['logs', 'box'], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(logs.stdout).toMatch(/^count 1$/m);
  }, 600_000);

  it('vmrun exec: exit status and streams through the CLI, and -it with a resize seen by stty size', async () => {
    const plain = await env.run(['exec', 'box', 'sh', '-c', 'echo out; echo err >&2; exit 3'], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(plain).toMatchObject({ status: 3, stdout: 'out\n', stderr: 'err\n' });

    const vmrunArgv = [process.execPath, join(REPO, 'bin', 'run.js'), 'exec', '-it', 'box', 'sh', '-c', PRINT_SIZE_PER_LINE];
    expect(await resizeSeenByGuest(env, vmrunArgv, work, COMMAND_TIMEOUT_MS)).toBe(0);
  }, 600_000);

  it('copies 1000 files and a 20 MB file in and out with equal hashes, modes and symlinks', async () => {
    const src = join(work, 'tree');
    mkdirSync(src);
    for (let d = 0; d < 10; d++) {
      mkdirSync(join(src, `d${d}`));
      for (let f = 0; f < 100; f++) writeFileSync(join(src, `d${d}`, `f${f}`), randomBytes(f * 13));
    }
    const big = openSync(join(src, 'big.bin'), 'w');
    // 20 MB, not the 100 MB of the host test (test/agent/copy.test.ts): in L2 under TCG
    // every megabyte costs seconds, and CI's whole run has a time bound.
    for (let i = 0; i < 20; i++) writeSync(big, randomBytes(1 << 20));
    closeSync(big);
    writeFileSync(join(src, 'run.sh'), '#!/bin/sh\necho ran\n');
    chmodSync(join(src, 'run.sh'), 0o750);
    symlinkSync('d3/f7', join(src, 'link'));
    const t0 = Date.now();
    await copyHostToGuest(agent, src, '/tmp');
    const t1 = Date.now();
    const guestSums = await run(agent.exec(['sh', '-c', 'cd /tmp/tree && sha256sum big.bin d9/f99 && stat -c %a run.sh && readlink link && ./run.sh']));
    expect(guestSums.out.toString()).toContain('ran\n');
    expect(guestSums.out.toString()).toContain('750\nd3/f7\n');
    const back = join(work, 'back');
    await copyGuestToHost(agent, '/tmp/tree', back);
    const t2 = Date.now();
    console.log(`cp 20 MB + 1000 files: in ${t1 - t0} ms, out ${t2 - t1} ms`);
    const strip = (t: Awaited<ReturnType<typeof describeTree>>) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.type === 'dir' ? { ...v, mtime: 0 } : v]));
    expect(strip(await describeTree(back))).toEqual(strip(await describeTree(src)));
    rmSync(back, { recursive: true, force: true });
  }, 900_000);

  it('a VM saved with an exec session open is restored and a new exec works', async () => {
    const open = agent.exec(['sleep', '1000']);
    await open.started;
    const saved = await env.run(['snapshot', 'save', 'box', '-o', 'with-exec', '--stop'], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(saved.status, saved.stderr).toBe(0);
    // The session's connection ended with the VM.
    await expect(open.exited).rejects.toThrow(/closed/);
    const restored = await env.run(['snapshot', 'restore', 'with-exec', '-d', '--name', 'box2'], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(restored.status, restored.stderr).toBe(0);
    const { agent: again } = await connectVmAgent('box2', { registry, timeoutMs: 120_000 });
    const r = await run(again.exec(['sh', '-c', 'cat /tmp/count; echo restored >&2']));
    expect(r.exitCode).toBe(0);
    expect(Number(r.out.toString())).toBeGreaterThan(0);
    expect(r.err.toString()).toBe('restored\n');
    again.close();
    expect(existsSync(join(env.runtimeDir, 'vms'))).toBe(true);
  }, 600_000);
});
