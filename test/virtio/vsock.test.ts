// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine, vsockLimits } from '../../src/index.js';
import { GUESTS } from '../helpers/cli.js';
import { BLOCK, connectToGuest, expectedBlock } from './vsock-host.js';

const VSOCK_GUEST = join(GUESTS, 'vsock.elf');

/** Collects a machine's console and resolves when a line matching `re` has arrived (bounded). */
function consoleOf(m: Machine): { text: () => string; until: (re: RegExp, timeoutMs?: number) => Promise<void> } {
  let out = '';
  m.output.on('data', (d: Buffer) => (out += d.toString()));
  return {
    text: () => out,
    until: async (re, timeoutMs = 20_000) => {
      const end = Date.now() + timeoutMs;
      while (!re.test(out) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      if (!re.test(out)) throw new Error(`no ${re} in the guest output within ${timeoutMs} ms:\n${out}`);
    },
  };
}

/**
 * A host service at `<socketPath>_<port>` for the guest's blocks: it reads nothing for
 * `stallMs` (so the guest must wait for credit), then checks every block and answers
 * "thanks BYTES ok|bad" and half-closes.
 */
function blockSink(path: string, blocks: number, stallMs: number): { server: Server; received: Promise<Buffer> } {
  let resolveReceived!: (b: Buffer) => void;
  const received = new Promise<Buffer>((r) => (resolveReceived = r));
  const server = createServer((socket: Socket) => {
    const chunks: Buffer[] = [];
    let total = 0;
    socket.pause();
    setTimeout(() => socket.resume(), stallMs);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      total += d.length;
      if (total < blocks * BLOCK) return;
      const all = Buffer.concat(chunks);
      let ok = all.length === blocks * BLOCK;
      for (let k = 0; ok && k < blocks; k++) ok = all.subarray(k * BLOCK, (k + 1) * BLOCK).equals(expectedBlock(k));
      socket.end(`thanks ${all.length} ${ok ? 'ok' : 'bad'}\n`);
      resolveReceived(all);
    });
    socket.on('error', () => {});
  });
  server.listen(path);
  return { server, received };
}

describe('virtio-vsock on this host\'s KVM (purpose-built guest)', () => {
  let dir: string;
  beforeEach(() => {
    // Unix sockets need a real filesystem: in the nested harness /tmp is 9p, XDG_RUNTIME_DIR a tmpfs.
    dir = mkdtempSync(join(process.env.XDG_RUNTIME_DIR ?? tmpdir(), 'vmrun-vsock-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('exchanges bytes both ways: host->guest through CONNECT, guest->host through <path>_<port>, with credit', async () => {
    const socketPath = join(dir, 'vm.sock');
    const blocks = 160; // 640 KiB: more than the device's buffer plus the socket's, so credit runs out
    const sink = blockSink(`${socketPath}_5000`, blocks, 400);
    const m = Machine.boot({
      kernel: VSOCK_GUEST,
      memory: '32M',
      cmdline: `refused=4999 listen=1234 connect=5000 blocks=${blocks}`,
      vsock: { cid: 42, socketPath },
    });
    const out = consoleOf(m);
    const exited = m.wait();
    try {
      await out.until(/vsock: listening on port 1234\n/);
      expect(statSync(socketPath).isSocket()).toBe(true);
      // A port nobody listens on in the guest: the guest answers RST, the VM closes our socket.
      const refused = await connectToGuest(socketPath, 9999, Buffer.alloc(0));
      expect(refused.okLine).toBeUndefined();
      expect(refused.received.length).toBe(0);
      // The echo: random bytes (binary, every value) go in and must come back exactly.
      const payload = randomBytes(24 * 1024);
      const echo = await connectToGuest(socketPath, 1234, payload);
      expect(echo.okLine).toMatch(/^OK \d+$/);
      expect(echo.received.equals(payload)).toBe(true);
      const sent = await sink.received;
      expect(sent.length).toBe(blocks * BLOCK);
    } finally {
      sink.server.close();
    }
    const exit = await exited;
    const text = out.text();
    expect(text).toContain('vsock: cid=42\n');
    expect(text).toContain('vsock: connect to port 4999 refused\n');
    // The guest advertises 8 KiB of buffer: the device had to stop and wait for its credit.
    const echoLine = /vsock: echoed 24576 bytes in (\d+) packets, credit waits \d+\n/.exec(text);
    expect(echoLine, text).not.toBeNull();
    expect(Number(echoLine![1])).toBeGreaterThan(24576 / 4096 - 1);
    const sentLine = /vsock: sent 160 blocks, credit waits (\d+)\n/.exec(text);
    expect(sentLine, text).not.toBeNull();
    expect(Number(sentLine![1])).toBeGreaterThan(0);
    expect(text).toContain(`vsock: host replied: thanks ${blocks * BLOCK} ok\n`);
    expect(text).toContain('vsock: interrupts seen\n');
    expect(text).toMatch(/guest: done\n$/);
    expect(exit).toMatchObject({ reason: 'reset', exitCode: 0 });
    expect(m.stats().virtio['virtio-vsock']).toEqual({ needsReset: 0, lastReason: '' });
    // The VM removes its socket when it ends.
    expect(existsSync(socketPath)).toBe(false);
  }, 60_000);

  it('resets a guest that sends past its credit, and says why on the VMM\'s stderr', async () => {
    const socketPath = join(dir, 'vm.sock');
    // A host service that never reads: the guest's bytes pile up in the device.
    let hostSide: Socket | undefined;
    let hostSocketClosed!: () => void;
    const closed = new Promise<void>((r) => (hostSocketClosed = r));
    const server = createServer((socket) => {
      hostSide = socket;
      socket.pause();
      socket.on('error', () => {});
      socket.on('close', hostSocketClosed);
    });
    server.listen(`${socketPath}_5002`);
    try {
      const child = spawn(process.execPath, [fileURLToPath(new URL('./machine-in-child.mjs', import.meta.url)), 'boot', VSOCK_GUEST, 'overrun=5002', socketPath]);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const status = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.on('exit', (code) => (clearTimeout(timer), resolve(code)));
      });
      expect(status, `${stdout}\n${stderr}`).toBe(0);
      const blocks = /vsock: overrun reset after (\d+) blocks\n/.exec(stdout);
      expect(blocks, stdout).not.toBeNull();
      // Not before the guest had used the whole buffer the device advertised.
      expect(Number(blocks![1]) * BLOCK).toBeGreaterThan(vsockLimits().bufferBytes);
      expect(stderr).toMatch(/^vmrun: vsock: connection between host port 5002 and guest port 50002 ended: data beyond the credit/m);
      // Its end is there to read once the service reads again (a paused socket sees no EOF).
      hostSide?.resume();
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the host socket was not closed within 10 s')), 10_000)));
      await Promise.race([closed, bound]).finally(() => clearTimeout(timer));
    } finally {
      server.close();
    }
  }, 90_000);

  it('refuses bad vsock settings with a typed error before a VM exists', () => {
    const limits = vsockLimits();
    expect(limits.minCid).toBe(3);
    const base = { kernel: VSOCK_GUEST, memory: '32M' };
    expect(() => Machine.boot({ ...base, vsock: { cid: 2, socketPath: join(dir, 's') } })).toThrow(/vsock cid 2 is out of range/);
    expect(() => Machine.boot({ ...base, vsock: { cid: limits.maxCid + 1, socketPath: join(dir, 's') } })).toThrow(
      expect.objectContaining({ kind: 'usage' }),
    );
    const long = join(dir, 'x'.repeat(limits.maxSocketPathBytes));
    expect(() => Machine.boot({ ...base, vsock: { cid: 3, socketPath: long } })).toThrow(/too long|at most/);
    expect(() => Machine.boot({ ...base, vsock: { cid: 3, socketPath: join(dir, 'missing', 's') } })).toThrow(
      expect.objectContaining({ kind: 'not-found' }),
    );
  });
});
