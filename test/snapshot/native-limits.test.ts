import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addon, type NativeSnapshotCapture } from '../../src/native/addon.js';
import { openSnapshotFile, writeSnapshotFile } from '../../src/snapshot/snapshot-file.js';
import type { SnapshotMetadata } from '../../src/snapshot/metadata.js';
import { Machine } from '../../src/index.js';
import { GUESTS, vmrun } from '../helpers/cli.js';

// The limits and the MEMORY_INDEX layout are the addon's: TypeScript reads them from
// addon().limits / addon().layout instead of keeping copies. These tests check that
// the snapshot reader and the VMM draw the line at the same place. No guest runs.
const tmp = mkdtempSync(join(tmpdir(), 'vmrun-limits-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const { limits, layout } = addon();

/** Writes a snapshot file whose machine has `cpus` vCPUs and `memoryBytes` of RAM (no RAM data). */
async function syntheticSnapshot(name: string, cpus: number, memoryBytes: number, machineFields: Record<string, unknown> = {}): Promise<string> {
  const path = join(tmp, name);
  const capture: NativeSnapshotCapture = {
    state: { vm: Buffer.alloc(8), vcpus: Array.from({ length: cpus }, () => Buffer.alloc(8)), devices: {} },
    memoryIndex: Buffer.alloc(0),
    memoryDataLength: 0,
    touchedPages: 0,
    pausedMs: 1,
    writeMs: 1,
  };
  const metadata = {
    format: 'vmrun-snapshot',
    formatVersion: '2.0',
    vmrunVersion: 'test',
    created: new Date(0).toISOString(),
    machine: { memoryBytes, cpus, kernelFormat: 'linux-elf', ...machineFields },
    host: { cpuModel: 'test', cpuVendor: 'test', virtualization: 'kvm' },
    ram: { touchedBytes: 0, savedBytes: 0, compressedBytes: 0, chunks: 0 },
    timings: { pausedMs: 1, writeMs: 1 },
  } as unknown as SnapshotMetadata;
  await writeSnapshotFile(path, async () => capture, () => metadata);
  return path;
}

describe('limits and layout exported by the addon', () => {
  it('the memory index entry layout describes a whole entry', () => {
    const e = layout.memoryIndexEntry;
    const fields = [e.ramOffset, e.dataOffset, e.compressedSize, e.pageCount, e.crc, e.bitmap];
    expect([...fields].sort((a, b) => a - b)).toEqual(fields);
    // The bitmap (one bit per page of a chunk) ends the entry.
    expect(e.bitmap + layout.memoryChunkBytes / layout.pageBytes / 8).toBe(e.bytes);
  });

  it('the snapshot reader accepts the VMM\'s largest machine and refuses one vCPU more', async () => {
    const largest = await syntheticSnapshot('largest.vmsnap', limits.maxCpus, limits.minMemoryBytes);
    expect(openSnapshotFile(largest).metadata.machine.cpus).toBe(limits.maxCpus);
    const tooMany = await syntheticSnapshot('too-many.vmsnap', limits.maxCpus + 1, limits.minMemoryBytes);
    expect(() => openSnapshotFile(tooMany)).toThrow(/the metadata does not describe a machine/);
    const tooSmall = await syntheticSnapshot('too-small.vmsnap', 1, limits.minMemoryBytes - layout.memoryChunkBytes);
    expect(() => openSnapshotFile(tooSmall)).toThrow(/the metadata does not describe a machine/);
  });

  it('the snapshot reader takes as many volumes as a VM has virtio devices, and only well-formed ones', async () => {
    const volume = (i: number) => ({ hostDir: `/srv/v${i}`, guestDir: `/data${i}`, readOnly: i % 2 === 0 });
    const all = Array.from({ length: limits.virtioDevices }, (_, i) => volume(i));
    const full = await syntheticSnapshot('volumes-full.vmsnap', 1, limits.minMemoryBytes, { volumes: all });
    expect(openSnapshotFile(full).metadata.machine.volumes).toEqual(all);
    const oneMore = await syntheticSnapshot('volumes-one-more.vmsnap', 1, limits.minMemoryBytes, { volumes: [...all, volume(99)] });
    expect(() => openSnapshotFile(oneMore)).toThrow(/the metadata does not describe a machine/);
    const relative = await syntheticSnapshot('volumes-relative.vmsnap', 1, limits.minMemoryBytes, { volumes: [{ ...volume(0), hostDir: 'srv' }] });
    expect(() => openSnapshotFile(relative)).toThrow(/the metadata does not describe a machine/);
    const notBoolean = await syntheticSnapshot('volumes-ro.vmsnap', 1, limits.minMemoryBytes, { volumes: [{ ...volume(0), readOnly: 'yes' }] });
    expect(() => openSnapshotFile(notBoolean)).toThrow(/"machine.volumes\[0\].readOnly" is not a boolean/);
  });

  it('the snapshot reader takes a Hermit guest\'s file mappings, absolute and on a Hermit machine only', async () => {
    const mappings = [{ hostPath: '/srv/data', guestPath: '/data' }];
    const hermit = await syntheticSnapshot('mappings.vmsnap', 1, limits.minMemoryBytes, { kernelFormat: 'hermit', fileMappings: mappings });
    expect(openSnapshotFile(hermit).metadata.machine.fileMappings).toEqual(mappings);
    const inspected = await vmrun(['snapshot', 'inspect', hermit]);
    expect(inspected.stdout).toContain('\nFiles:        /srv/data at /data\n');
    expect(inspected.status).toBe(0);
    const linux = await syntheticSnapshot('mappings-linux.vmsnap', 1, limits.minMemoryBytes, { fileMappings: mappings });
    expect(() => openSnapshotFile(linux)).toThrow(/the metadata does not describe a machine/);
    const relative = await syntheticSnapshot('mappings-relative.vmsnap', 1, limits.minMemoryBytes, { kernelFormat: 'hermit', fileMappings: [{ hostPath: 'srv', guestPath: '/data' }] });
    expect(() => openSnapshotFile(relative)).toThrow(/the metadata does not describe a machine/);
    const notString = await syntheticSnapshot('mappings-type.vmsnap', 1, limits.minMemoryBytes, { kernelFormat: 'hermit', fileMappings: [{ hostPath: 7, guestPath: '/data' }] });
    expect(() => openSnapshotFile(notString)).toThrow(/"machine.fileMappings\[0\].hostPath" is not a string/);
  });

  it("the snapshot reader takes its own machine type and refuses another architecture's in one line", async () => {
    const own = addon().machine.type;
    const other = own === 'x86_64-pc' ? 'arm64-virt' : 'x86_64-pc';
    const same = await syntheticSnapshot('own-type.vmsnap', 1, limits.minMemoryBytes, { type: own });
    expect(openSnapshotFile(same).metadata.machine.type).toBe(own);
    const foreign = await syntheticSnapshot('foreign-type.vmsnap', 1, limits.minMemoryBytes, { type: other });
    expect(() => openSnapshotFile(foreign)).toThrow(new RegExp(`^snapshot \\S+foreign-type.vmsnap: it holds an ${other} machine, and vmrun on this host runs ${own} machines$`));
    // Snapshots from before the field were saved by the x86-64 VMM.
    const untyped = await syntheticSnapshot('untyped.vmsnap', 1, limits.minMemoryBytes);
    if (own === 'x86_64-pc') expect(openSnapshotFile(untyped).metadata.machine.type).toBeUndefined();
    else expect(() => openSnapshotFile(untyped)).toThrow(/it holds an x86_64-pc machine/);
  });

  it('the VMM refuses one vCPU more than the limit, naming the same limit', () => {
    expect(() => Machine.boot({ kernel: join(GUESTS, 'hello.elf'), cpus: limits.maxCpus + 1, memory: '32M' })).toThrow(
      new RegExp(`--cpus ${limits.maxCpus + 1} is out of range \\(1-${limits.maxCpus}\\)`),
    );
  });
});
