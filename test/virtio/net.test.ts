// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
// virtio-net on this host's KVM with a purpose-built guest (fixtures/guests/virtio-net)
// that drives the queues itself: malformed frames are dropped without failing the
// device or the host, a broken chain is refused, and real frames go through the
// user-mode back end to a UDP echo server on the host's loopback (through 10.0.2.2).
import { createSocket, type Socket } from 'node:dgram';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/index.js';
import { GUESTS } from '../helpers/cli.js';

const NET_GUEST = join(GUESTS, 'virtio-net.elf');

/** A UDP echo server on 127.0.0.1 that records what it received. */
async function udpEcho(): Promise<{ socket: Socket; port: number; received: string[] }> {
  const socket = createSocket('udp4');
  const received: string[] = [];
  socket.on('message', (msg, from) => {
    received.push(msg.toString());
    socket.send(msg, from.port, from.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { socket, port: socket.address().port, received };
}

async function collect(m: Machine): Promise<{ text: string; exit: Awaited<ReturnType<Machine['wait']>> }> {
  let text = '';
  m.output.on('data', (d: Buffer) => (text += d.toString()));
  const exit = await m.wait();
  return { text, exit };
}

describe('virtio-net on this host\'s KVM (purpose-built guest)', () => {
  it('drops malformed frames, refuses a broken chain, and carries UDP to the host loopback through the gateway', async () => {
    const echo = await udpEcho();
    try {
      const m = Machine.boot({
        kernel: NET_GUEST,
        memory: '32M',
        cmdline: `udp-port=${echo.port}`,
        network: { mode: 'host-loopback' },
      });
      const { text, exit } = await collect(m);
      for (const name of ['shorter-than-header', 'header-only', 'truncated-ethernet', 'jumbo-frame', 'write-only-chain', 'bad-ipv4-lengths', 'bad-udp-length']) {
        expect(text, text).toContain(`net: ${name} dropped\n`);
      }
      expect(text).toContain('net: arp reply from the gateway\n');
      expect(text).toContain('net: udp echo matched\n');
      expect(text).toContain('net: policy dropped the frame to 127.0.0.1\n');
      expect(text).toContain('net: broken chain refused\n');
      expect(text).toContain('net: works after reset\n');
      expect(text).toMatch(/guest: done\n$/);
      expect(exit).toMatchObject({ reason: 'reset', exitCode: 0 });
      // Only the datagram sent to the gateway reached the host; the one addressed to 127.0.0.1 did not.
      expect(echo.received).toEqual(['vmrun-net-fixture-ping']);
      // The MAC in the device's config space is the host's locally administered one.
      const mac = /net: mac ([0-9a-f:]+)\n/.exec(text)?.[1] ?? '';
      expect(parseInt(mac.split(':')[0]!, 16) & 3).toBe(2);
    } finally {
      echo.socket.close();
    }
  }, 60_000);

  it('refuses a published port that is in use with one usage error, before a VM runs', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    try {
      let err: unknown;
      try {
        Machine.boot({ kernel: NET_GUEST, memory: '32M', network: { publish: [{ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: port, guestPort: 80 }] } });
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ kind: 'usage' });
      expect((err as Error).message).toBe(`cannot publish 127.0.0.1:${port}->80/tcp: the host port is already in use`);
    } finally {
      busy.close();
    }
  });

  it('publishes a port while the VM runs and releases it when the VM ends', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const echo = await udpEcho();
    try {
      const m = Machine.boot({
        kernel: NET_GUEST,
        memory: '32M',
        cmdline: `udp-port=${echo.port}`,
        network: { mode: 'host-loopback', publish: [{ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: port, guestPort: 80 }] },
      });
      expect(m.ports()).toEqual([{ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: port, guestPort: 80 }]);
      // While it runs the port is taken.
      const again = createServer();
      const inUse = await new Promise<boolean>((r) => {
        again.once('error', () => r(true));
        again.listen(port, '127.0.0.1', () => r(false));
      });
      again.close();
      const { exit } = await collect(m);
      expect(exit.exitCode).toBe(0);
      expect(inUse).toBe(true);
      // Ended: nothing holds it any more.
      const after = createServer();
      await new Promise<void>((resolve, reject) => {
        after.once('error', reject);
        after.listen(port, '127.0.0.1', resolve);
      });
      after.close();
    } finally {
      echo.socket.close();
    }
  }, 60_000);
});
