// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine } from '../../src/index.js';
import { GUESTS } from '../helpers/cli.js';

// Unix sockets need a real filesystem: in the nested harness /tmp is 9p, XDG_RUNTIME_DIR a tmpfs.
const dir = mkdtempSync(join(process.env.XDG_RUNTIME_DIR ?? tmpdir(), 'vmrun-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every wrong thing fixtures/guests/virtio-hostile does, in its order. */
const REFUSED = [
  'descriptor-loop',
  'descriptor-self-loop',
  'address-outside-ram',
  'address-wraps',
  'huge-length',
  'buffer-past-ram-end',
  'avail-index-jump',
  'head-out-of-range',
  'next-out-of-range',
  'indirect-not-offered',
  'unknown-flag',
  'readable-after-writable',
  'queue-size-above-max',
  'queue-size-not-power-of-two',
  'queue-size-zero',
  'desc-table-outside-ram',
  'used-ring-misaligned',
  'avail-ring-past-ram-end',
  'driver-ok-without-features-ok',
  'features-not-offered',
];

describe('virtio-mmio transport against a hostile guest', () => {
  it('refuses every bad ring, chain and set-up with DEVICE_NEEDS_RESET; the device works after a reset; the VM ends cleanly', async () => {
    const m = Machine.boot({ kernel: join(GUESTS, 'virtio-hostile.elf'), memory: '32M', vsock: { cid: 3, socketPath: join(dir, 'vm.sock') } });
    let out = '';
    m.output.on('data', (d: Buffer) => (out += d.toString()));
    const exit = await m.wait();
    const lines = out.split('\n').filter((l) => l.startsWith('hostile: '));
    // Each case is refused in turn; an accepted one would end the run with "guest: error NAME accepted".
    expect(lines, out).toEqual([...REFUSED.map((c) => `hostile: ${c} refused`), 'hostile: device works after reset']);
    expect(out).toMatch(/guest: done\n$/);
    expect(exit).toMatchObject({ reason: 'reset', exitCode: 0 });
    // The host saw each violation (all but the feature refusal need a reset), and says why.
    expect(m.stats().virtio['virtio-vsock']).toEqual({
      needsReset: REFUSED.length - 1,
      lastReason: 'the driver set DRIVER_OK before the features were accepted',
    });
  }, 60_000);

  it('stopping a VM with an open host connection closes it and leaves no thread behind', async () => {
    const socketPath = join(dir, 'stop.sock');
    // The first test booted a VM already, so lazily created process-wide threads exist.
    const threads = () => readdirSync('/proc/self/task').length;
    const before = threads();
    const m = Machine.boot({ kernel: join(GUESTS, 'vsock.elf'), memory: '32M', cmdline: 'listen=1234', vsock: { cid: 4, socketPath } });
    let out = '';
    m.output.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 1000 && !out.includes('listening on port 1234'); i++) await new Promise((r) => setTimeout(r, 20));
    const client = connect(socketPath);
    const closed = new Promise<string>((resolve) => {
      let got = '';
      client.on('data', (d: Buffer) => (got += d.toString()));
      client.on('close', () => resolve(got));
      client.on('error', () => {});
    });
    client.write('CONNECT 1234\n');
    m.stop();
    expect((await m.wait()).reason).toBe('killed');
    await closed; // the VM closed our socket (a hang here fails the test by its timeout)
    expect(threads()).toBe(before);
  }, 60_000);
});
