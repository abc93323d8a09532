// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Machine } from '../../src/index.js';
import { GUESTS } from '../helpers/cli.js';

// A Machine whose output nobody reads keeps at most `outputBufferBytes` of it; the rest
// is dropped, counted, and marked where it went missing (docs/console-output.md). The
// port-counter guest (fixtures/guests/port-counter) prints 'a'..'z' without pause.
const GUEST = join(GUESTS, 'port-counter.elf');
const LIMIT = 30_000;
const MARKER = /\r\n\[vmrun: (\d+) bytes of console output dropped: the reader fell behind\]\r\n/g;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('console output nobody reads (port-counter guest, host KVM)', () => {
  it('is bounded: the excess is dropped with a counted marker, and what is kept is intact', async () => {
    const m = Machine.boot({ kernel: GUEST, memory: '32M', cmdline: `limit=${LIMIT}`, outputBufferBytes: 4096 });
    // Nobody reads until the guest is done printing.
    for (let i = 0; i < 3000 && m.stats().consoleBytes < LIMIT; i++) await sleep(10);
    expect(m.output.readableLength + m.output.writableLength).toBeLessThan(4096 + 64 * 1024);
    const chunks: Buffer[] = [];
    m.output.on('data', (d: Buffer) => chunks.push(d));
    await m.wait();
    const text = Buffer.concat(chunks).toString('latin1');
    const written = m.stats().consoleBytes;

    const dropped = [...text.matchAll(MARKER)].map((x) => Number(x[1]));
    expect(dropped.length).toBeGreaterThan(0);
    const kept = text.split(MARKER).filter((_, i) => i % 2 === 0);
    // Every byte the guest wrote was either delivered or counted in a marker.
    expect(kept.join('').length + dropped.reduce((a, b) => a + b, 0)).toBe(written);
    // Inside each kept stretch, the letters follow each other.
    for (const part of kept) {
      const letters = part.replace(/^guest: port-counter\n/, '').replace(/\n(guest: done\n)?$/, '');
      for (let i = 1; i < letters.length; i++) {
        expect((letters.charCodeAt(i) - letters.charCodeAt(i - 1) + 26) % 26, `at ${i} of ${JSON.stringify(letters.slice(i - 5, i + 5))}`).toBe(1);
      }
    }
  }, 60_000);
});
