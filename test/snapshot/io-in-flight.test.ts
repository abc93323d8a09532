// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine } from '../../src/index.js';
import { GUESTS } from '../helpers/cli.js';

// The port-counter guest (fixtures/guests/port-counter) writes 'a'..'z' over and over,
// one port I/O exit per byte (outb) or per block (rep outsb), with no status polls: a
// save almost always lands between an OUT's exit and its completion. If the VMM
// captured the vCPU there, a restore would run the OUT again and the byte (or block)
// would appear twice.
const GUEST = join(GUESTS, 'port-counter.elf');
const LIMIT = 40_000;
const SAVES = 8;
const tmp = mkdtempSync(join(tmpdir(), 'vmrun-io-'));
process.env.VMRUN_CACHE = join(tmp, 'cache');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const letters = (n: number) => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');

/** Collects a machine's output; `until(n)` resolves once it holds at least n more bytes than at the call. */
function collect(m: Machine) {
  let out = '';
  m.output.on('data', (d: Buffer) => (out += d.toString('latin1')));
  return {
    get text() {
      return out;
    },
    async grow(by: number) {
      const target = out.length + by;
      for (let i = 0; i < 3000 && out.length < target; i++) await new Promise((r) => setTimeout(r, 5));
    },
  };
}

describe('a save with port I/O in flight (port-counter guest, host KVM)', () => {
  it('restored output continues the saved output with no byte twice and none lost', async () => {
    let machine = Machine.boot({ kernel: GUEST, memory: '32M', cmdline: `limit=${LIMIT}` });
    let out = collect(machine);
    let whole = '';
    for (let save = 0; save < SAVES; save++) {
      await out.grow(1500);
      const path = join(tmp, `save-${save}.vmsnap`);
      await machine.snapshot(path, { stop: true });
      await machine.wait();
      whole += out.text;
      machine = await Machine.restore(path);
      out = collect(machine);
    }
    const exit = await machine.wait();
    whole += out.text;
    expect(exit.reason).toBe('reset');
    const body = whole.replace(/^guest: port-counter\n/, '').replace(/\nguest: done\n$/, '');
    // The first place the joined output leaves the sequence says where a save tore an OUT.
    const expected = letters(LIMIT);
    let firstDifference = 0;
    while (firstDifference < body.length && body[firstDifference] === expected[firstDifference]) firstDifference++;
    expect({ length: body.length, firstDifference, around: body.slice(Math.max(0, firstDifference - 30), firstDifference + 30) }).toEqual({
      length: LIMIT,
      firstDifference: LIMIT,
      around: expected.slice(LIMIT - 30),
    });
  }, 120_000);
});
