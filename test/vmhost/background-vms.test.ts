// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GUESTS, HOST_SLOWDOWN, REPO } from '../helpers/cli.js';
import { VmRegistry } from '../../src/vmhost/registry.js';
import { requestVm } from '../../src/vmhost/client.js';
import { MULTI_STEP_TEST_TIMEOUT_MS, VmTestEnv, eventually, sleep } from './vm-env.js';

const env = new VmTestEnv();
afterAll(() => env.cleanup());

/** A guest that prints `count N` 50 times a second for about half an hour. */
const COUNTER = [join(GUESTS, 'counter.elf'), '--memory', '64M', '--cmdline', 'period=20000000 limit=100000'];
const HELLO = [join(GUESTS, 'hello.elf'), '--memory', '32M'];

async function bootDetached(args: string[]): Promise<string> {
  const r = await env.run(['boot', '-d', ...args]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^[0-9a-f]{12}\n$/);
  return r.stdout.trim();
}

async function psJson(): Promise<Array<{ id: string; name?: string; status: string; exitCode?: number; pid?: number }>> {
  const r = await env.run(['ps', '--all', '--json']);
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
}

const lastCount = (text: string): number => Number([...text.matchAll(/count (\d+)\n/g)].pop()?.[1] ?? 0);

describe('background VMs: boot -d, ps, logs, attach, stop', { timeout: MULTI_STEP_TEST_TIMEOUT_MS }, () => {
  it('boot -d returns at once with an ID; ps shows the VM running; its socket is 0600 in a 0700 directory', async () => {
    const t0 = Date.now();
    const id = await bootDetached(['--name', 'first', ...COUNTER]);
    expect(Date.now() - t0).toBeLessThan(10_000 * HOST_SLOWDOWN);
    const table = await env.run(['ps']);
    expect(table.status).toBe(0);
    const row = table.stdout.split('\n').find((l) => l.startsWith(id));
    expect(row).toMatch(new RegExp(`^${id}\\s+first\\s+counter\\.elf\\s+Up `));
    const [vm] = (await psJson()).filter((v) => v.id === id);
    expect(vm).toMatchObject({ id, name: 'first', status: 'running' });
    expect(env.hostPids()).toContain(vm!.pid);

    const socket = statSync(join(env.runtimeDir, 'vms', id, 'control.sock'));
    expect(socket.isSocket()).toBe(true);
    expect(socket.mode & 0o777).toBe(0o600);
    expect(statSync(env.runtimeDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(env.runtimeDir, 'vms', id, 'console.log')).mode & 0o777).toBe(0o600);

    // The guest keeps running after the command that started it is gone: the log grows.
    const logs1 = await env.run(['logs', 'first']);
    expect(logs1.stdout).toMatch(/^guest: counter\ncounter: seed=0 period=20000000 limit=100000\n/);
    await sleep(500);
    const logs2 = await env.run(['logs', id]);
    expect(lastCount(logs2.stdout)).toBeGreaterThan(lastCount(logs1.stdout));
    expect(logs2.stdout.startsWith(logs1.stdout)).toBe(true);

    const stop = await env.run(['stop', 'first']);
    expect(stop).toMatchObject({ status: 0, stdout: 'first\n', stderr: '' });
  });

  it('stop ends the VM: ps no longer lists it, ps --all shows Exited (137), and its socket is gone', async () => {
    const id = await bootDetached(COUNTER);
    const stop = await env.run(['stop', id.slice(0, 6)]);
    expect(stop.status).toBe(0);
    expect((await env.run(['ps'])).stdout).not.toContain(id);
    const all = await env.run(['ps', '--all']);
    expect(all.stdout.split('\n').find((l) => l.startsWith(id))).toMatch(/Exited \(137\)/);
    expect((await psJson()).find((v) => v.id === id)).toMatchObject({ status: 'exited', exitCode: 137 });
    expect(existsSync(join(env.runtimeDir, 'vms', id, 'control.sock'))).toBe(false);
    // Its host process is gone too.
    const record = await (await VmRegistry.open(env.env)).read(id);
    await eventually(async () => (env.hostPids().includes(record!.pid!) ? undefined : true), 'host process exit');
    // Stopping it again is not an error (docker does the same).
    expect((await env.run(['stop', id])).status).toBe(0);
  });

  it('logs -f prints the output so far, follows new output, and ends by itself when the VM stops', async () => {
    const id = await bootDetached(COUNTER);
    const follow = env.start(['logs', '-f', id]);
    await follow.waitFor(/^guest: counter\n/);
    const first = lastCount(follow.stdout);
    await follow.waitFor(new RegExp(`count ${first + 10}\\n`));
    expect((await env.run(['stop', id])).status).toBe(0);
    expect(await follow.waitExit()).toBe(0);
    // It printed exactly the whole log, with no gap or repeat in the counts.
    const log = (await env.run(['logs', id])).stdout;
    expect(follow.stdout).toBe(log);
    const counts = [...log.matchAll(/count (\d+)\n/g)].map((m) => Number(m[1]));
    expect(counts).toEqual(counts.map((_, i) => i + 1));
  });

  it('attach streams the console from now on; SIGINT detaches and leaves the VM running; after the VM ends attach exits with its code', async () => {
    const id = await bootDetached(['--name', 'attached', ...COUNTER]);
    const attach = env.start(['attach', 'attached']);
    const m = await attach.waitFor(/count (\d+)\n/);
    await attach.waitFor(new RegExp(`count ${Number(m[1]) + 5}\\n`));
    expect(attach.stdout).not.toContain('guest: counter'); // only output from the time it attached
    // Input goes to the guest's UART (this guest does not read it): the host takes it and the guest runs on.
    attach.child.stdin!.write('typed input\n');
    const n = lastCount(attach.stdout);
    await attach.waitFor(new RegExp(`count ${n + 5}\\n`));
    attach.child.kill('SIGINT');
    expect(await attach.waitExit()).toBe(0);
    expect((await psJson()).find((v) => v.id === id)?.status).toBe('running');

    const again = env.start(['attach', id]);
    await again.waitFor(/count \d+\n/);
    expect((await env.run(['stop', id])).status).toBe(0);
    expect(await again.waitExit()).toBe(137);
  });

  it('attach on a terminal: raw mode, and Ctrl-] detaches without stopping the VM', async () => {
    const id = await bootDetached(COUNTER);
    // script(1) gives the attach command a pseudo-terminal; bytes written to its stdin are typed keys.
    const cmd = `${process.execPath} ${join(REPO, 'bin', 'run.js')} attach ${id}`;
    const tty = env.start(['-qfec', cmd, '/dev/null'], 'script', []);
    await tty.waitFor(/attached to [0-9a-f]{12}; Ctrl-\] detaches/);
    await tty.waitFor(/count \d+\r?\n/);
    tty.child.stdin!.write('\x1d');
    expect(await tty.waitExit()).toBe(0);
    expect((await psJson()).find((v) => v.id === id)?.status).toBe('running');
    expect((await env.run(['stop', id])).status).toBe(0);
  });

  it('clients that vanish (killed attach, dropped connections) leave no descriptors behind in the host process', async () => {
    const id = await bootDetached(COUNTER);
    const { pid } = (await psJson()).find((v) => v.id === id)!;
    const hostFds = (): number => readdirSync(`/proc/${pid}/fd`).length;
    await requestVm(id, { op: 'status' }, { env: env.env });
    await sleep(300); // the host closes its side of that connection a moment later
    const baseline = hostFds();
    for (let i = 0; i < 3; i++) {
      const attach = env.start(['attach', id]);
      await attach.waitFor(/count \d+\n/);
      attach.child.kill('SIGKILL');
      await attach.waitExit();
    }
    await eventually(async () => (hostFds() <= baseline ? true : undefined), `host fds back to ${baseline} (now ${hostFds()})`);
    expect((await psJson()).find((v) => v.id === id)?.status).toBe('running');
    expect((await env.run(['stop', id])).status).toBe(0);
  });

  it('a guest that ends by itself is shown as Exited (0) with its whole log; rm removes it and frees its name', async () => {
    const id = await bootDetached(['--name', 'hello', ...HELLO]);
    const vm = await eventually(async () => (await psJson()).find((v) => v.id === id && v.status === 'exited'), 'hello exits');
    expect(vm.exitCode).toBe(0);
    expect((await env.run(['logs', 'hello'])).stdout).toMatch(/^guest: hello\n[\s\S]*guest: done\n$/);
    expect((await env.run(['attach', 'hello'])).stderr).toBe('vmrun: VM hello is not running (exited)\n');

    const taken = await env.run(['boot', '-d', '--name', 'hello', ...HELLO]);
    expect(taken.status).toBe(125);
    expect(taken.stderr).toBe(`vmrun: the name "hello" is already in use by VM ${id}; remove it with vmrun rm or choose another --name\n`);

    expect(await env.run(['rm', 'hello'])).toMatchObject({ status: 0, stdout: 'hello\n' });
    expect(existsSync(join(env.runtimeDir, 'vms', id))).toBe(false);
    const reused = await bootDetached(['--name', 'hello', ...HELLO]);
    expect(reused).not.toBe(id);
  });

  it('rm refuses a running VM unless --force, which stops it first', async () => {
    const id = await bootDetached(COUNTER);
    const refused = await env.run(['rm', id]);
    expect(refused.status).toBe(125);
    expect(refused.stderr).toBe(`vmrun: VM ${id} is running: stop it first, or use --force\n`);
    expect(await env.run(['rm', '-f', id])).toMatchObject({ status: 0, stdout: `${id}\n` });
    expect((await psJson()).some((v) => v.id === id)).toBe(false);
  });

  it('a host process killed with SIGKILL shows as Dead, and its stale socket is removed', async () => {
    const id = await bootDetached(COUNTER);
    const sock = join(env.runtimeDir, 'vms', id, 'control.sock');
    const { pid } = (await psJson()).find((v) => v.id === id)!;
    process.kill(pid!, 'SIGKILL');
    await eventually(async () => (env.hostPids().includes(pid!) ? undefined : true), 'host process death');
    expect(existsSync(sock)).toBe(true);
    expect((await env.run(['ps'])).stdout).not.toContain(id);
    const all = await env.run(['ps', '-a']);
    expect(all.stdout.split('\n').find((l) => l.startsWith(id))).toMatch(/\sDead\s/);
    expect(existsSync(sock)).toBe(false);
    const attach = await env.run(['attach', id]);
    expect(attach).toMatchObject({ status: 125, stderr: `vmrun: VM ${id} is not running (dead)\n` });
    expect((await env.run(['rm', id])).status).toBe(0);
  });

  it('an unknown or ambiguous VM is one error line with exit 125', async () => {
    for (const cmd of [['stop', 'nope'], ['logs', 'nope'], ['logs', '-f', 'nope'], ['attach', 'nope'], ['rm', 'nope']]) {
      const r = await env.run(cmd);
      expect({ cmd, status: r.status, stderr: r.stderr, stdout: r.stdout }).toEqual({ cmd, status: 125, stderr: 'vmrun: no such VM: nope\n', stdout: '' });
    }
    // Two stops: one known, one not -> the known one is stopped, the error names the other.
    const id = await bootDetached(COUNTER);
    const both = await env.run(['stop', 'nope', id]);
    expect(both).toMatchObject({ status: 125, stdout: `${id}\n`, stderr: 'vmrun: no such VM: nope\n' });
    // The empty prefix matches nothing rather than everything.
    expect((await env.run(['logs', ''])).status).toBe(125);

    // Two records whose ids share a prefix (written by hand: random ids rarely collide).
    const created = new Date().toISOString();
    for (const twin of ['abcabcabc001', 'abcabcabc002']) {
      mkdirSync(join(env.runtimeDir, 'vms', twin));
      writeFileSync(join(env.runtimeDir, 'vms', twin, 'vm.json'), JSON.stringify({ id: twin, origin: 'boot', created, state: 'exited', exitCode: 0 }));
    }
    const ambiguous = await env.run(['logs', 'abcabc']);
    expect(ambiguous).toMatchObject({ status: 125, stderr: 'vmrun: VM id prefix "abcabc" is ambiguous: it matches abcabcabc001, abcabcabc002\n' });
    expect(await env.run(['rm', 'abcabcabc001', 'abcabcabc002'])).toMatchObject({ status: 0, stdout: 'abcabcabc001\nabcabcabc002\n' });
  });

  it('boot -d with a bad kernel or flag fails in the foreground with the usual error and leaves nothing behind', async () => {
    const before = readdirSync(join(env.runtimeDir, 'vms')).length;
    const missing = await env.run(['boot', '-d', '/nonexistent/kernel']);
    expect(missing.status).toBe(125);
    expect(missing.stderr).toMatch(/^vmrun: [^\n]*\/nonexistent\/kernel[^\n]*\n$/);
    const notKernel = await env.run(['boot', '-d', join(GUESTS, '..', 'README.md')]);
    expect(notKernel.status).toBe(125);
    expect(notKernel.stderr.split('\n')).toHaveLength(2);
    const badName = await env.run(['boot', '-d', '--name', '-x', ...HELLO]);
    expect(badName.stderr).toMatch(/^vmrun: invalid VM name "-x"/);
    const nameWithoutDetach = await env.run(['boot', '--name', 'x', ...HELLO]);
    expect(nameWithoutDetach).toMatchObject({ status: 125, stderr: 'vmrun: --name names a background VM: use it with --detach\n' });
    expect(readdirSync(join(env.runtimeDir, 'vms')).length).toBe(before);
    expect(readdirSync(join(env.runtimeDir, 'names'))).not.toContain('x');
  });

  it('boot -d --timeout records the timeout as the reason, with exit 125', async () => {
    const id = await bootDetached(['--timeout', '1', ...COUNTER]);
    const vm = await eventually(async () => (await psJson()).find((v) => v.id === id && v.status === 'exited'), 'timeout', 15_000);
    expect(vm).toMatchObject({ exitCode: 125, exitReason: 'timeout', exitMessage: 'the guest did not finish within 1 s (--timeout)' });
  });
});

describe('control protocol (client library)', { timeout: MULTI_STEP_TEST_TIMEOUT_MS }, () => {
  it('status, pause and resume: a paused guest prints nothing, and continues without a gap', async () => {
    const id = await bootDetached(COUNTER);
    const status = await requestVm(id, { op: 'status' }, { env: env.env });
    expect(status).toMatchObject({ id, state: 'running' });
    expect(status.stats.consoleBytes).toBeGreaterThan(0);

    await requestVm(id, { op: 'pause' }, { env: env.env });
    expect((await psJson()).find((v) => v.id === id)?.status).toBe('paused');
    const atPause = (await env.run(['logs', id])).stdout;
    await sleep(400);
    expect((await env.run(['logs', id])).stdout).toBe(atPause);
    expect(await requestVm(id, { op: 'status' }, { env: env.env })).toMatchObject({ state: 'paused' });

    await requestVm(id, { op: 'resume' }, { env: env.env });
    await eventually(async () => (lastCount((await env.run(['logs', id])).stdout) > lastCount(atPause) + 3 ? true : undefined), 'output after resume');
    const counts = [...(await env.run(['logs', id])).stdout.matchAll(/count (\d+)\n/g)].map((m) => Number(m[1]));
    expect(counts).toEqual(counts.map((_, i) => i + 1));

    // A paused VM can be stopped too.
    await requestVm(id, { op: 'pause' }, { env: env.env });
    const exit = await requestVm(id, { op: 'stop' }, { env: env.env });
    expect(exit).toEqual({ reason: 'killed', exitCode: 137, message: expect.any(String) });
  });

  it('a malformed request gets an error answer and the connection stays usable', async () => {
    const id = await bootDetached(COUNTER);
    const registry = await VmRegistry.open(env.env);
    const { connect } = await import('node:net');
    const socket = connect(registry.paths(id).controlSocket);
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    socket.write('not json\n{"op":"fly"}\n{"op":"status"}\n');
    await eventually(async () => (answer.split('\n').length > 3 ? true : undefined), 'three answers');
    const lines = answer.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ ok: false, error: { kind: 'usage', message: 'not a control request: not json' } });
    expect(lines[1]).toMatchObject({ ok: false, error: { kind: 'usage' } });
    expect(lines[2]).toMatchObject({ ok: true, result: { id, state: 'running' } });
    socket.destroy();
    await requestVm(id, { op: 'stop' }, { env: env.env });
  });
});
