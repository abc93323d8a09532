// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from '../../src/index.js';
import { GUESTS } from '../helpers/cli.js';
import { connectToGuest } from './vsock-host.js';

// Unix sockets need a real filesystem: in the nested harness /tmp is 9p, XDG_RUNTIME_DIR a tmpfs.
const work = mkdtempSync(join(process.env.XDG_RUNTIME_DIR ?? tmpdir(), 'vmrun-vsock-snap-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Resolves once `re` matches what `read()` returns (bounded). */
async function until(read: () => string, re: RegExp, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!re.test(read())) {
    if (Date.now() > end) throw new Error(`${what}: no ${re} within ${timeoutMs} ms in:\n${read()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('virtio-vsock across a snapshot (purpose-built guest)', () => {
  it('restored in a new process, the guest gets a transport reset on its saved event queue and serves a new connection', async () => {
    const socketPath = join(work, 'vm.sock');
    const m = Machine.boot({ kernel: join(GUESTS, 'vsock.elf'), memory: '32M', cmdline: 'listen=1234 await-reset=1', vsock: { cid: 9, socketPath } });
    let before = '';
    m.output.on('data', (d: Buffer) => (before += d.toString()));
    await until(() => before, /vsock: listening on port 1234\n/, 'the guest listening');
    // Use the queues before the save, so that their indexes are not at zero.
    const first = randomBytes(9000);
    const echo1 = await connectToGuest(socketPath, 1234, first);
    expect(echo1.received.equals(first)).toBe(true);
    await until(() => before, /vsock: waiting for a transport reset\n/, 'the guest waiting for the event');
    const file = join(work, 'vsock.vmsnap');
    const saved = await m.snapshot(file, { stop: true });
    expect(saved.metadata.machine.vsock).toEqual({ cid: 9 });
    expect((await m.wait()).reason).toBe('killed');
    expect(existsSync(socketPath)).toBe(false);

    // A new process restores it with a new socket.
    const restoredSocket = join(work, 'restored.sock');
    const child = spawn(process.execPath, [fileURLToPath(new URL('./machine-in-child.mjs', import.meta.url)), 'restore', file, restoredSocket], { stdio: ['ignore', 'pipe', 'pipe'] });
    let after = '';
    let errors = '';
    child.stdout.on('data', (d: Buffer) => (after += d.toString()));
    child.stderr.on('data', (d: Buffer) => (errors += d.toString()));
    const status = new Promise<number | null>((r) => child.on('close', r));
    try {
      await until(() => after + errors, /vsock: listening on port 1234\n/, 'the restored guest listening again', 120_000);
      const second = randomBytes(12000);
      const echo2 = await connectToGuest(restoredSocket, 1234, second);
      expect(echo2.okLine).toMatch(/^OK \d+$/);
      expect(echo2.received.equals(second)).toBe(true);
      expect(await status, errors).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
    // Exactly one transport-reset event, in the first buffer of the restored event queue,
    // then rx/tx go on from their saved indexes (a device restarting at 0 would break the echo).
    // The restored VM has a CID of its own (not the saved 9), which the guest re-reads on the reset, as Linux does.
    const reset = /^vsock: transport reset \(event queue used 1\), cid=(\d+)\nvsock: listening on port 1234\n/.exec(after);
    expect(reset, after).not.toBeNull();
    const cid = Number(reset![1]);
    expect(cid).not.toBe(9);
    expect(cid).toBeGreaterThanOrEqual(3);
    expect(after).toMatch(/vsock: echoed 12000 bytes in \d+ packets/);
    expect(after).toContain('vsock: interrupts seen\n');
    expect(after).toMatch(/guest: done\n$/);
  }, 300_000);
});
