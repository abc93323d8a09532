// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine } from '../../src/index.js';
import { GUESTS } from '../helpers/cli.js';

// Pauses are held per caller: the user's pause and a snapshot's are separate holds, and
// the vCPUs run only when neither is held; saves of one machine run one at a time. The
// port-counter guest (fixtures/guests/port-counter) prints without pause while it runs,
// so output that grows is a guest that runs.
const GUEST = join(GUESTS, 'port-counter.elf');
const tmp = mkdtempSync(join(tmpdir(), 'vmrun-pause-'));
process.env.VMRUN_CACHE = join(tmp, 'cache');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function boot(): { machine: Machine; output: () => string } {
  const machine = Machine.boot({ kernel: GUEST, memory: '32M', cmdline: 'limit=100000000' });
  let out = '';
  machine.output.on('data', (d: Buffer) => (out += d.toString('latin1')));
  return { machine, output: () => out };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await sleep(10);
  expect(cond()).toBe(true);
}

/** The guest's letters must follow each other ('a'..'z' repeating) with none repeated or skipped. */
function expectContiguous(letters: string): void {
  const breaks = [...letters].flatMap((c, i) =>
    i > 0 && c.charCodeAt(0) !== 97 + ((letters.charCodeAt(i - 1) - 97 + 1) % 26) ? [letters.slice(Math.max(0, i - 5), i + 5)] : [],
  );
  expect(breaks).toEqual([]);
}

/** Restores `path`, lets it print `bytes` more, stops it, and returns what it printed. */
async function restoredOutput(path: string, bytes: number): Promise<string> {
  const m = await Machine.restore(path);
  let out = '';
  m.output.on('data', (d: Buffer) => (out += d.toString('latin1')));
  await until(() => out.length >= bytes);
  m.stop();
  await m.wait();
  return out;
}

describe('pause holders (port-counter guest, host KVM)', () => {
  it('a save while the user has the machine paused leaves it paused; resume lets it run', async () => {
    const { machine, output } = boot();
    await until(() => output().length > 1000);
    await machine.pause();
    const atPause = output().length;
    const saved = await machine.snapshot(join(tmp, 'while-paused.vmsnap'));
    expect(saved.pausedMs).toBeGreaterThan(0);
    await sleep(500);
    // The save's own pause ended; the user's did not.
    expect(output().length).toBe(atPause);
    machine.resume();
    await until(() => output().length > atPause + 1000);
    machine.stop();
    await machine.wait();
    expectContiguous(output().replace(/^guest: port-counter\n/, ''));
  }, 60_000);

  it('two concurrent saves run one after the other; the user pause outlives both', async () => {
    const { machine, output } = boot();
    await until(() => output().length > 1000);
    await machine.pause();
    const atPause = output().length;
    const paths = [join(tmp, 'concurrent-a.vmsnap'), join(tmp, 'concurrent-b.vmsnap')];
    await Promise.all(paths.map((p) => machine.snapshot(p)));
    await sleep(500);
    expect(output().length).toBe(atPause);
    machine.stop();
    await machine.wait();
    // Both files hold the machine at the one paused moment: each restore continues
    // exactly where the output stopped.
    const lastLetter = output().at(-1)!.charCodeAt(0);
    for (const p of paths) {
      const after = await restoredOutput(p, 500);
      expect(after.charCodeAt(0)).toBe(97 + ((lastLetter - 97 + 1) % 26));
      expectContiguous(after);
    }
  }, 90_000);

  it('two concurrent saves of a running machine both restore to a contiguous continuation', async () => {
    const { machine, output } = boot();
    await until(() => output().length > 1000);
    const paths = [join(tmp, 'running-a.vmsnap'), join(tmp, 'running-b.vmsnap')];
    await Promise.all(paths.map((p) => machine.snapshot(p)));
    // The machine runs on after both saves.
    const afterSaves = output().length;
    await until(() => output().length > afterSaves + 500);
    machine.stop();
    await machine.wait();
    for (const p of paths) expectContiguous(await restoredOutput(p, 500));
  }, 90_000);
});
