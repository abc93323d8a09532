// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
// virtio-blk on this host's KVM, driven by a purpose-built guest (fixtures/guests/
// virtio-blk) that sends good requests with byte checks and hostile ones, against
// real files; then snapshots of a machine with disks: saved, restored, and refused
// when a disk is missing or changed size.
import { crc32 } from 'node:zlib';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Machine } from '../../src/index.js';
import { GUESTS, vmrun } from '../helpers/cli.js';

const SECTOR = 512;
const DISK_SECTORS = 2048;
const GUEST = join(GUESTS, 'virtio-blk.elf');

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'vmrun-blk-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function run(m: Machine): Promise<{ out: string; exit: Awaited<ReturnType<Machine['wait']>> }> {
  let out = '';
  m.output.on('data', (d: Buffer) => (out += d.toString()));
  const exit = await m.wait();
  return { out, exit };
}

/** The pattern the guest writes to sectors 16-23. */
const pattern = () => Buffer.from(Array.from({ length: 8 * SECTOR }, (_, i) => (i * 31 + 7) & 0xff));

describe('virtio-blk with a purpose-built guest', () => {
  it('serves reads, writes, flush and GET_ID with byte checks, and answers every bad request without stopping', async () => {
    const rw = join(work, 'rw.img');
    const ro = join(work, 'ro.img');
    const initial = Buffer.alloc(DISK_SECTORS * SECTOR);
    for (let i = 0; i < initial.length; i += 4) initial.writeUInt32LE((i * 2654435761) >>> 0, i);
    writeFileSync(rw, initial);
    writeFileSync(ro, Buffer.alloc(64 * SECTOR, 0x33));
    const roBefore = readFileSync(ro);

    const { out, exit } = await run(Machine.boot({ kernel: GUEST, memory: '32M', disks: [{ path: rw }, { path: ro, readOnly: true }] }));
    const lines = out.split('\n').filter((l) => l.startsWith('blk: ')).map((l) => l.slice(5));
    expect(exit.reason, out).toBe('reset');
    expect(out).toContain('guest: done');
    expect(lines).toEqual([
      `capacity ${DISK_SECTORS} ro=0 serial vmrun-disk0`,
      `read crc ${crc32(initial.subarray(0, 8 * SECTOR)).toString(16)}`,
      'write-flush-read ok',
      'last sector ok',
      'read-at-capacity status 1',
      'read-across-end status 1',
      'write-across-end status 1',
      'sector-max status 1',
      'sector-offset-wraps status 1',
      'length-not-sectors status 1',
      'unknown-type status 2',
      'short-header status 1',
      'header-not-readable status 1',
      'no-status used-len 0',
      'broken-chain needs-reset',
      'works after reset',
      'ro features ro=1 write status 1',
    ]);
    // On the host: the pattern landed in sectors 16-23 and nothing else changed
    // (sector 0 survived the wrapping offset, sector 40 the request without a status).
    const after = readFileSync(rw);
    expect(after.subarray(16 * SECTOR, 24 * SECTOR).equals(pattern())).toBe(true);
    const expected = Buffer.from(initial);
    pattern().copy(expected, 16 * SECTOR);
    expect(after.equals(expected)).toBe(true);
    expect(readFileSync(ro).equals(roBefore)).toBe(true);
  });

  it('refuses a missing disk or one it cannot write with one clear error, before a VM exists', () => {
    const missing = join(work, 'missing.img');
    expect(() => Machine.boot({ kernel: GUEST, memory: '32M', disks: [{ path: missing }] })).toThrow(`disk ${missing} does not exist`);
    const tiny = join(work, 'tiny.img');
    writeFileSync(tiny, Buffer.alloc(100));
    expect(() => Machine.boot({ kernel: GUEST, memory: '32M', disks: [{ path: tiny }] })).toThrow(`disk ${tiny} is smaller than one 512-byte sector`);
  });
});

describe('snapshots of a machine with disks', () => {
  it('are saved without the disk files and refused on restore when a disk is missing or resized', async () => {
    const disk = join(work, 'snap.img');
    writeFileSync(disk, Buffer.alloc(64 * SECTOR));
    // counter runs until stopped; the disk is attached but unused by it.
    const m = Machine.boot({ kernel: join(GUESTS, 'counter.elf'), memory: '32M', cmdline: 'period=2000000 limit=100000', disks: [{ path: disk, readOnly: true }] });
    let out = '';
    m.output.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 400 && !/count 2\n/.test(out); i++) await new Promise((r) => setTimeout(r, 25));
    const snap = join(work, 'with-disk.vmsnap');
    await m.snapshot(snap, { stop: true });
    await m.wait();
    expect(existsSync(snap)).toBe(true);
    const inspect = await vmrun(['snapshot', 'inspect', snap]);
    expect(inspect.status, inspect.stderr).toBe(0);
    expect(inspect.stdout).toContain(`Disks:        ${disk} (read-only, 32 KiB, serial vmrun-disk0)`);
    expect(inspect.stdout).toContain('disk files are not part of the snapshot');

    truncateSync(disk, 128 * SECTOR);
    await expect(Machine.restore(snap)).rejects.toThrow(`disk ${disk} has 65536 bytes now; the snapshot was taken with 32768 (disk files are not part of a snapshot)`);
    rmSync(disk);
    await expect(Machine.restore(snap)).rejects.toThrow(`disk ${disk} of the snapshot is missing (disk files are not part of a snapshot)`);

    writeFileSync(disk, Buffer.alloc(64 * SECTOR));
    const restored = await Machine.restore(snap);
    let more = '';
    restored.output.on('data', (d: Buffer) => (more += d.toString()));
    for (let i = 0; i < 400 && !/count \d+\n/.test(more); i++) await new Promise((r) => setTimeout(r, 25));
    expect(more).toMatch(/count \d+\n/);
    restored.stop();
    await restored.wait();
  });
});
