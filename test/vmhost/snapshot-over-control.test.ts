// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GUESTS, REPO } from '../helpers/cli.js';
import { requestVm } from '../../src/vmhost/client.js';
import { MULTI_STEP_TEST_TIMEOUT_MS, VmTestEnv, eventually } from './vm-env.js';

const env = new VmTestEnv();
const snapshots = mkdtempSync(join(tmpdir(), 'vmrun-snaps-'));
afterAll(() => {
  env.cleanup();
  rmSync(snapshots, { recursive: true, force: true });
});

// The host program runs from dist/ (node cannot run the .ts sources), so the starting side does too.
type VmHostLibrary = typeof import('../../src/vmhost/index.js');
const dist = (): Promise<VmHostLibrary> => import(join(REPO, 'dist', 'vmhost', 'index.js'));

const counts = (text: string): number[] => [...text.matchAll(/count (\d+)\n/g)].map((m) => Number(m[1]));

describe('snapshots of background VMs', { timeout: MULTI_STEP_TEST_TIMEOUT_MS }, () => {
  it('snapshot --stop over the control socket, then restore in a new background host: the counts go on without a gap', async () => {
    const boot = await env.run(['boot', '-d', join(GUESTS, 'counter.elf'), '--memory', '64M', '--cmdline', 'period=20000000 limit=100000']);
    expect(boot.status).toBe(0);
    const id = boot.stdout.trim();
    await eventually(async () => (counts((await env.run(['logs', id])).stdout).length >= 5 ? true : undefined), 'five counts');

    const file = join(snapshots, 'counter.vmrun');
    const saved = (await requestVm(id, { op: 'snapshot', path: file, stop: true }, { env: env.env, timeoutMs: 60_000 })) as { path: string; fileBytes: number };
    expect(saved.path).toBe(file);
    expect(statSync(file).size).toBe(saved.fileBytes);
    const ps = JSON.parse((await env.run(['ps', '-a', '--json'])).stdout) as Array<{ id: string; status: string; exitCode: number; exitReason: string }>;
    expect(ps.find((v) => v.id === id)).toMatchObject({ status: 'exited', exitCode: 0, exitReason: 'snapshot' });
    const before = (await env.run(['logs', id])).stdout;

    const { startDetached } = await dist();
    const restored = await startDetached({ machine: { kind: 'restore', snapshot: file } }, { origin: 'restore', snapshot: file }, { env: { ...process.env, ...env.env } });
    await eventually(async () => (counts((await env.run(['logs', restored.id])).stdout).length >= 5 ? true : undefined), 'restored counts');
    const table = (await env.run(['ps'])).stdout;
    expect(table.split('\n').find((l) => l.startsWith(restored.id))).toMatch(/snapshot counter\.vmrun\s+Up /);
    expect((await env.run(['stop', restored.id])).status).toBe(0);

    // The restored guest prints the very lines the saved one would have printed next.
    const after = (await env.run(['logs', restored.id])).stdout;
    const all = counts(before + after);
    expect(all).toEqual(all.map((_, i) => i + 1));
    // The restore really continued (a save can split a line, so compare the joined text).
    expect(all.length).toBeGreaterThan(counts(before).length);
  });

  it('a snapshot that cannot be written is an error answer; the VM keeps running', async () => {
    const boot = await env.run(['boot', '-d', join(GUESTS, 'counter.elf'), '--memory', '64M', '--cmdline', 'period=20000000 limit=100000']);
    const id = boot.stdout.trim();
    const bad = join(snapshots, 'no-such-dir', 'x.vmrun');
    await expect(requestVm(id, { op: 'snapshot', path: bad, stop: false }, { env: env.env, timeoutMs: 60_000 })).rejects.toMatchObject({
      name: 'VmrunError',
      message: expect.stringContaining(bad),
    });
    expect(existsSync(bad)).toBe(false);
    expect(await requestVm(id, { op: 'status' }, { env: env.env })).toMatchObject({ state: 'running' });
    await requestVm(id, { op: 'stop' }, { env: env.env });
  });

  it('restoring a file that is not a snapshot fails at start, with nothing left in the registry', async () => {
    const { startDetached, VmRegistry } = await dist();
    const notSnapshot = join(GUESTS, 'hello.elf');
    await expect(startDetached({ machine: { kind: 'restore', snapshot: notSnapshot } }, { origin: 'restore', snapshot: notSnapshot }, { env: { ...process.env, ...env.env } })).rejects.toMatchObject({
      kind: 'snapshot',
    });
    const ids = (await (await VmRegistry.open(env.env)).list()).filter((r) => r.origin === 'restore' && r.snapshot === notSnapshot);
    expect(ids).toEqual([]);
  });
});
