import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Machine } from '../../src/index.js';
import { GUESTS, REPO } from '../helpers/cli.js';
import { VmTestEnv, eventually } from '../vmhost/vm-env.js';
import { connectToGuest } from './vsock-host.js';

// Unix sockets need a real filesystem: in the nested harness /tmp is 9p, XDG_RUNTIME_DIR a tmpfs.
const socketBase = process.env.XDG_RUNTIME_DIR ?? tmpdir();
const env = new VmTestEnv(socketBase);
const work = mkdtempSync(join(socketBase, 'vmrun-vsock-snap-'));
afterAll(() => {
  env.cleanup();
  rmSync(work, { recursive: true, force: true });
});

// The host program runs from dist/ (node cannot run the .ts sources), so the starting side does too.
type VmHostLibrary = typeof import('../../src/vmhost/index.js');
const dist = (): Promise<VmHostLibrary> => import(join(REPO, 'dist', 'vmhost', 'index.js'));

describe('virtio-vsock across a snapshot (purpose-built guest)', () => {
  it('a restored VM in a new process resets its connections, keeps its queues and serves a new connection', async () => {
    const socketPath = join(work, 'vm.sock');
    const m = Machine.boot({ kernel: join(GUESTS, 'vsock.elf'), memory: '32M', cmdline: 'listen=1234 await-reset=1', vsock: { cid: 9, socketPath } });
    let before = '';
    m.output.on('data', (d: Buffer) => (before += d.toString()));
    const seen = (re: RegExp) => eventually(async () => (re.test(before) ? true : undefined), `${re} in the guest output`, 30_000);
    await seen(/vsock: listening on port 1234\n/);
    // Use the queues before the save, so that their indexes are not at zero.
    const first = randomBytes(9000);
    const echo1 = await connectToGuest(socketPath, 1234, first);
    expect(echo1.received.equals(first)).toBe(true);
    await seen(/vsock: waiting for a transport reset\n/);
    // The guest now waits for the event with a connection-free device; save and stop it.
    const file = join(work, 'vsock.vmsnap');
    const saved = await m.snapshot(file, { stop: true });
    expect(saved.metadata.machine.vsock).toEqual({ cid: 9 });
    expect((await m.wait()).reason).toBe('killed');

    // Restore in a new host process: it creates the VM's socket in its private runtime directory.
    const { startDetached, VmRegistry } = await dist();
    const restored = await startDetached({ machine: { kind: 'restore', snapshot: file } }, { origin: 'restore', snapshot: file }, { env: { ...process.env, ...env.env }, timeoutMs: 90_000 });
    const registry = await VmRegistry.open({ ...process.env, ...env.env });
    const record = await registry.read(restored.id);
    const vsock = record?.vsock;
    expect(vsock?.cid).toBe(9);
    expect(vsock?.socketPath).toBe(registry.paths(restored.id).vsockSocket);
    expect(statSync(vsock!.socketPath).isSocket()).toBe(true);
    expect(statSync(dirname(vsock!.socketPath)).mode & 0o077).toBe(0);

    // Read the host's files directly: a vmrun command per poll costs seconds in the nested harness.
    const logs = async () => readFileSync(registry.paths(restored.id).consoleLog, 'utf8');
    await eventually(async () => (/vsock: listening on port 1234\n/.test(await logs()) ? true : undefined), 'the restored guest listening again', 60_000);
    const second = randomBytes(12000);
    const echo2 = await connectToGuest(vsock!.socketPath, 1234, second);
    expect(echo2.okLine).toMatch(/^OK \d+$/);
    expect(echo2.received.equals(second)).toBe(true);
    await eventually(async () => (/guest: done\n/.test(await logs()) ? true : undefined), 'the restored guest to finish', 60_000);
    const after = await logs();
    // The device sent exactly one transport-reset event, on the restored event queue.
    expect(after).toContain('vsock: transport reset (event queue used 1)\n');
    expect(after).toMatch(/vsock: echoed 12000 bytes in \d+ packets/);
    expect(after).toContain('vsock: interrupts seen\n');
    const ended = await eventually(async () => {
      const r = await registry.read(restored.id);
      return r?.state === 'exited' ? r : undefined;
    }, 'the restored VM recorded as exited');
    expect(ended).toMatchObject({ exitCode: 0, exitReason: 'reset' });
  }, 400_000);
});
