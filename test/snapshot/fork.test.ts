// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
// One snapshot restored 20 times at once through the library (Machine.restoreMany), and
// Machine.fork of a running machine, with the purpose-built clone guest
// (fixtures/guests/clone): each clone goes on from the saved count, reads its own MAC
// and vsock CID from its devices' config spaces, and folds the MAC into its RAM, so its
// region's CRC proves its writes are its own; the clones share the RAM image.
import { crc32 } from 'node:zlib';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Machine } from '../../src/index.js';
import { GUESTS, HOST_SLOWDOWN } from '../helpers/cli.js';

// Unix sockets need a real filesystem: in the nested harness /tmp may be 9p, XDG_RUNTIME_DIR is a tmpfs.
const work = mkdtempSync(join(process.env.XDG_RUNTIME_DIR ?? tmpdir(), 'vmrun-fork-'));
beforeAll(() => {
  process.env.VMRUN_CACHE = join(work, 'cache');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const CLONE_GUEST = join(GUESTS, 'clone.elf');
const CLONES = 20;
/** Two counts a second: 20 clones printing stay light even on an emulated host. */
const PERIOD_NS = 500_000_000;
const WAIT_MS = 60_000 * HOST_SLOWDOWN;

interface Count {
  count: number;
  mac: string;
  cid: string;
  crc: string;
}

/** Every complete "count" line of a transcript. */
function countLines(text: string): Count[] {
  return [...text.matchAll(/^count (\d+) mac=(\S+) cid=(\S+) crc=([0-9a-f]{8})$/gm)].map((m) => ({ count: Number(m[1]), mac: m[2]!, cid: m[3]!, crc: m[4]! }));
}

/** The guest's region CRC after each line's count (the model in clone.c's header comment), in order. */
function modelCrcs(lines: Count[]): string[] {
  const mask = (1n << 64n) - 1n;
  const words = Array.from({ length: 256 }, (_, p) => (BigInt(p + 1) * 0x9e3779b97f4a7c15n) & mask);
  const bytes = Buffer.alloc(256 * 8);
  return lines.map((l) => {
    const mac = l.mac === 'none' ? 0n : BigInt(`0x${l.mac.replaceAll(':', '')}`);
    const p = (l.count - 1) % 256;
    words[p] = words[p]! ^ ((BigInt(l.count) * 0xc2b2ae3d27d4eb4fn) & mask) ^ mac;
    words.forEach((w, i) => bytes.writeBigUInt64LE(w, i * 8));
    return crc32(bytes).toString(16).padStart(8, '0');
  });
}

/** A machine's console as it grows. */
function record(m: Machine): () => string {
  let text = '';
  m.output.on('data', (d: Buffer) => (text += d.toString()));
  return () => text;
}

async function until(read: () => string, test: (text: string) => boolean, what: string): Promise<void> {
  const end = Date.now() + WAIT_MS;
  while (!test(read())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${WAIT_MS} ms; output:\n${read().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const lastCount = (text: string): number => countLines(text).at(-1)?.count ?? 0;

/** Boots the clone guest with a network and a vsock device and lets it count to `n`. */
async function bootCounting(n: number): Promise<{ m: Machine; output: () => string }> {
  const m = Machine.boot({
    kernel: CLONE_GUEST, memory: '32M', cmdline: `period=${PERIOD_NS}`,
    network: { mode: 'host-loopback' }, vsock: { cid: 3, socketPath: join(work, `original-${n}.sock`) },
  });
  const output = record(m);
  await until(output, (t) => lastCount(t) >= n, `the guest counting to ${n}`);
  return { m, output };
}

/**
 * Checks one clone's whole transcript (the original's output up to the save, then the
 * clone's): counts without gaps or repeats, the clone's own MAC and CID from the
 * restore on, and every CRC the model's for exactly that history.
 */
function checkClone(before: string, clone: Machine, after: string, savedAt: number): void {
  const lines = countLines(before + after);
  expect(lines.map((l) => l.count)).toEqual(lines.map((_, i) => i + 1));
  const identity = clone.cloneIdentity!;
  for (const l of lines) if (l.count > savedAt) expect({ mac: l.mac, cid: l.cid }).toEqual({ mac: identity.mac, cid: String(identity.vsockCid) });
  expect(lines.map((l) => l.crc)).toEqual(modelCrcs(lines));
}

describe('restoring one snapshot many times (clone guest)', () => {
  it(`restores ${CLONES} clones at once: each goes on from the saved state with its own MAC, CID and memory, sharing the RAM image`, async () => {
    const { m, output } = await bootCounting(3);
    const file = join(work, 'clone.vmsnap');
    await m.snapshot(file, { stop: true });
    await m.wait();
    const before = output();
    const savedAt = lastCount(before);
    const original = countLines(before)[0]!;

    const t0 = performance.now();
    const clones = await Machine.restoreMany(file, CLONES, { vsockSocketPath: (i) => join(work, `clone-${i}.sock`) });
    console.log(`restoreMany(${CLONES}): ${(performance.now() - t0).toFixed(1)} ms`);
    try {
      expect(clones).toHaveLength(CLONES);
      const outputs = clones.map(record);
      await Promise.all(outputs.map((o, i) => until(o, (t) => lastCount(before + t) >= savedAt + 2, `clone ${i} counting on`)));

      // Identities: distinct locally administered unicast MACs and distinct CIDs, none the original's.
      const macs = clones.map((c) => c.cloneIdentity!.mac!);
      const cids = clones.map((c) => c.cloneIdentity!.vsockCid!);
      expect(new Set(macs).size).toBe(CLONES);
      expect(new Set(cids).size).toBe(CLONES);
      expect(macs).not.toContain(original.mac);
      expect(cids).not.toContain(3);
      for (const mac of macs) expect(parseInt(mac.slice(0, 2), 16) & 3).toBe(2);
      clones.forEach((c, i) => checkClone(before, c, outputs[i]!(), savedAt));

      // One RAM image for all, built once.
      expect(readdirSync(join(work, 'cache', 'snapshots')).filter((f) => f.endsWith('.ram'))).toHaveLength(1);
      // Memory: a clone's own pages are the ones its guest wrote since the restore: one
      // region page per count (distinct pages, below 256 counts), plus a few for its stack,
      // variables and the accessed/dirty bits in its page tables. The rest of what it maps
      // is the image's page cache, shared: with 20 clones in this process, their
      // proportional shares are far below their resident sizes.
      const countsBefore = outputs.map((o) => lastCount(before + o()) - savedAt);
      const memory = await Promise.all(clones.map((c) => c.memoryUsage()));
      const countsAfter = outputs.map((o) => lastCount(before + o()) - savedAt);
      const PAGE = 4096;
      memory.forEach(({ guestRam }, i) => {
        expect(guestRam.bytes).toBe(32 << 20);
        expect(guestRam.writtenBytes).toBeGreaterThanOrEqual(Math.min(256, countsBefore[i]!) * PAGE);
        expect(guestRam.writtenBytes).toBeLessThanOrEqual((Math.min(256, countsAfter[i]! + 1) + 32) * PAGE);
        // It reads all 256 region pages every count: those it has not written stay the image's.
        expect(guestRam.sharedBytes).toBeGreaterThanOrEqual((256 - Math.min(256, countsAfter[i]! + 1)) * PAGE);
        expect(guestRam.residentBytes).toBe(guestRam.writtenBytes + guestRam.sharedBytes);
      });
      const sum = (f: (g: (typeof memory)[number]['guestRam']) => number): number => memory.reduce((a, x) => a + f(x.guestRam), 0);
      expect(sum((g) => g.pssBytes)).toBeLessThan(sum((g) => g.writtenBytes) + sum((g) => g.sharedBytes) / 4);
      console.log(
        `per clone: written ${(sum((g) => g.writtenBytes) / CLONES / 1024).toFixed(0)} KiB, shared ${(sum((g) => g.sharedBytes) / CLONES / 1024).toFixed(0)} KiB, ` +
          `Pss ${(sum((g) => g.pssBytes) / CLONES / 1024).toFixed(0)} KiB`,
      );
    } finally {
      for (const c of clones) c.stop();
      await Promise.all(clones.map((c) => c.wait()));
    }
  }, 20 * WAIT_MS);

  it('Machine.fork saves a running machine, which runs on, and restores it: original and clones count on independently', async () => {
    const { m, output } = await bootCounting(2);
    const { snapshot, clones } = await m.fork(3, { snapshotPath: join(work, 'fork.vmsnap'), vsockSocketPath: (i) => join(work, `fork-${i}.sock`) });
    try {
      const savedText = output();
      expect(snapshot.metadata.machine.vsock).toEqual({ cid: 3 });
      expect(clones).toHaveLength(3);
      const outputs = clones.map(record);
      const savedAt = lastCount(savedText);
      await until(output, (t) => lastCount(t) >= savedAt + 2, 'the original counting on');
      await Promise.all(outputs.map((o, i) => until(o, (t) => countLines(t).length >= 2, `fork ${i} counting on`)));
      // The clones start from the count the save caught (at or before what the original had printed by the time fork returned).
      for (const [i, c] of clones.entries()) {
        const first = countLines(outputs[i]!())[0]!;
        expect(first.count).toBeLessThanOrEqual(savedAt + 2);
        expect(first.mac).toBe(c.cloneIdentity!.mac);
      }
      // The original keeps its own identity: its MAC is none of the clones'.
      const mine = countLines(output()).at(-1)!.mac;
      expect(clones.map((c) => c.cloneIdentity!.mac)).not.toContain(mine);
      expect(new Set(clones.map((c) => c.cloneIdentity!.vsockCid)).size).toBe(3);
    } finally {
      for (const x of [m, ...clones]) x.stop();
      await Promise.all([m, ...clones].map((x) => x.wait()));
    }
  }, 10 * WAIT_MS);
});
