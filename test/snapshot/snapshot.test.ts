// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Machine, isVmrunError } from '../../src/index.js';
import { SectionKind, sectionLabel } from '../../src/snapshot/format.js';
import { GUESTS, REPO } from '../helpers/cli.js';
import { readSections, rewriteSection, rewriteVersion, stateRecord } from '../helpers/snapshot-file.js';
import { addon } from '../../src/native/addon.js';

// The counter guest (fixtures/guests/README.md) counts LAPIC timer ticks and prints the
// CRC of a RAM region every 16 counts: a restore that loses a page, the timer, or
// registers shows up as a wrong CRC, a gap, a repeat, or silence.
const COUNTER = join(GUESTS, 'counter.elf');
// 100 ms per count: slow enough that a save lands mid-run even where the guest runs
// at hardware speed and the host side is emulated (the nested-KVM L1).
const CMDLINE = 'seed=11 period=100000000 limit=40';
const tmp = mkdtempSync(join(tmpdir(), 'vmrun-snap-'));
process.env.VMRUN_CACHE = join(tmp, 'cache');

const lines = (s: string) => s.split('\n').filter((l) => l.length > 0);

/** The uninterrupted run's output: what a restored guest's output must continue. */
let reference: string;
let snapshotPath: string;
/** Output before the save, as bytes: a save can fall inside a line. */
let beforeSave: string;

/** Runs a restore in a fresh Node process (as a user would) and returns its output and exit. */
function restoreInNewProcess(path: string): Promise<{ out: string; err: string; status: number | null }> {
  const code = `
    const { Machine } = await import(${JSON.stringify(join(REPO, 'dist', 'index.js'))});
    try {
      const m = await Machine.restore(process.argv[1]);
      m.output.pipe(process.stdout);
      const exit = await m.wait();
      process.exitCode = exit.exitCode;
    } catch (e) { process.stderr.write(String(e.kind) + ': ' + e.message + '\\n'); process.exitCode = 125; }`;
  return new Promise((resolve, reject) => {
    // The compiled library (npm test builds it first), as a program embedding vmrun would.
    const c = spawn(process.execPath, ['--input-type=module', '-e', code, path], {
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d));
    c.stderr.on('data', (d: Buffer) => (err += d));
    const timer = setTimeout(() => c.kill('SIGKILL'), 60_000);
    c.on('error', reject);
    c.on('close', (status) => {
      clearTimeout(timer);
      resolve({ out, err, status });
    });
  });
}

beforeAll(async () => {
  const m = Machine.boot({ kernel: COUNTER, memory: '64M', cmdline: CMDLINE });
  let out = '';
  m.output.on('data', (d: Buffer) => (out += d));
  await m.wait();
  reference = out;
  expect(lines(reference).at(-1)).toBe('guest: done');

  // Same guest, saved mid-run (after count 12) with --stop semantics.
  const live = Machine.boot({ kernel: COUNTER, memory: '64M', cmdline: CMDLINE });
  let liveOut = '';
  live.output.on('data', (d: Buffer) => (liveOut += d));
  for (let i = 0; i < 1000 && !/count 12\n/.test(liveOut); i++) await new Promise((r) => setTimeout(r, 10));
  snapshotPath = join(tmp, 'counter.vmsnap');
  const saved = await live.snapshot(snapshotPath, { stop: true });
  expect(saved.pausedMs).toBeGreaterThan(0);
  await live.wait();
  beforeSave = liveOut;
}, 120_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('snapshot save and restore (host KVM, counter guest)', () => {
  it('restores in a new process: output continues with no gap, no repeat, and the same RAM', async () => {
    const r = await restoreInNewProcess(snapshotPath);
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    // Before + after must be exactly the uninterrupted run, byte for byte: the same
    // counts (timer interrupts kept arriving) and the same region CRCs (RAM restored).
    expect(lines(beforeSave + r.out)).toEqual(lines(reference));
  });

  it('two restores of one snapshot run side by side and both continue correctly', async () => {
    const [a, b] = await Promise.all([restoreInNewProcess(snapshotPath), restoreInNewProcess(snapshotPath)]);
    for (const r of [a, b]) {
      expect(r.status).toBe(0);
      expect(lines(beforeSave + r.out)).toEqual(lines(reference));
    }
  });

  it('saving without stopping lets the guest run on, and the snapshot still restores', async () => {
    const m = Machine.boot({ kernel: COUNTER, memory: '64M', cmdline: CMDLINE });
    let out = '';
    m.output.on('data', (d: Buffer) => (out += d));
    for (let i = 0; i < 1000 && !/count 5\n/.test(out); i++) await new Promise((r) => setTimeout(r, 10));
    const path = join(tmp, 'running.vmsnap');
    await m.snapshot(path);
    const exit = await m.wait();
    expect(exit.reason).toBe('reset'); // the original ran to its end
    expect(lines(out)).toEqual(lines(reference));
    const r = await restoreInNewProcess(path);
    expect(r.status).toBe(0);
    expect(lines(r.out).at(-1)).toBe('guest: done');
    // The restored run continues the reference from where the save was, byte for byte.
    expect(r.out.length).toBeGreaterThan(0);
    expect(reference.endsWith(r.out)).toBe(true);
  });

  it('the file is far smaller than the touched RAM (zero pages omitted, zstd)', () => {
    const { size } = statSync(snapshotPath);
    const meta = JSON.parse(
      readFileSync(snapshotPath).subarray(
        readSections(snapshotPath).find((s) => s.kind === SectionKind.Metadata)!.offset,
        readSections(snapshotPath).find((s) => s.kind === SectionKind.Metadata)!.offset +
          readSections(snapshotPath).find((s) => s.kind === SectionKind.Metadata)!.length,
      ).toString(),
    );
    expect(meta.ram.touchedBytes).toBeGreaterThan(4 * 2 ** 20);
    expect(size).toBeLessThan(0.4 * meta.ram.touchedBytes);
    expect(meta.machine).toMatchObject({ memoryBytes: 64 * 2 ** 20, cpus: 1, kernelFormat: 'linux-elf', kernel: COUNTER });
  });
});

describe('snapshot restore refuses damaged or foreign files, starting nothing', () => {
  const expectRefused = async (path: string, pattern: RegExp) => {
    const r = await restoreInNewProcess(path);
    expect(r.status).toBe(125);
    expect(r.out).toBe(''); // no guest ran
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^snapshot: /);
    expect(r.err).toMatch(pattern);
  };

  it('a flipped byte in each section in turn', async () => {
    const sections = readSections(snapshotPath);
    expect(sections.map((s) => s.kind).sort()).toEqual(
      expect.arrayContaining([SectionKind.Metadata, SectionKind.VmState, SectionKind.VcpuState, SectionKind.DeviceState, SectionKind.MemoryIndex, SectionKind.MemoryData]),
    );
    const whole = readFileSync(snapshotPath);
    // Stateless devices have empty sections: there is no byte of theirs to flip.
    const flippable = sections.filter((s) => s.length > 0);
    expect(new Set(flippable.map((s) => s.kind)).size).toBe(6);
    for (const s of flippable) {
      const damaged = Buffer.from(whole);
      damaged[s.offset + (s.length >> 1)]! ^= 0x40;
      const path = join(tmp, `flip-${sectionLabel(s).replace(/\W/g, '_')}.vmsnap`);
      writeFileSync(path, damaged);
      await expectRefused(path, s.kind === SectionKind.MemoryData ? /memory chunk \d+ fails its checksum/ : new RegExp(`section ${sectionLabel(s)} checksum mismatch`));
    }
  }, 120_000);

  it('a flipped byte in the header, the padding and the section table', async () => {
    const whole = readFileSync(snapshotPath);
    const cases: Array<[number, RegExp]> = [
      [20, /header checksum mismatch/],
      [100, /header padding/],
      [whole.length - 10, /section table checksum mismatch/],
    ];
    for (const [offset, pattern] of cases) {
      const damaged = Buffer.from(whole);
      damaged[offset]! ^= 0x01;
      const path = join(tmp, `flip-at-${offset}.vmsnap`);
      writeFileSync(path, damaged);
      await expectRefused(path, pattern);
    }
  });

  it('a truncated file', async () => {
    const whole = readFileSync(snapshotPath);
    for (const length of [0, 100, 5000, whole.length - 1]) {
      const path = join(tmp, `truncated-${length}.vmsnap`);
      writeFileSync(path, whole.subarray(0, length));
      await expectRefused(path, /truncated/);
    }
  });

  it('a newer format version', async () => {
    const path = join(tmp, 'v3.vmsnap');
    rewriteVersion(snapshotPath, path, 3, 0);
    await expectRefused(path, /format version 3\.0 is newer than this vmrun supports \(2\.x\)/);
  });

  it('an older format version (1.x: positional device state)', async () => {
    const path = join(tmp, 'v1.vmsnap');
    rewriteVersion(snapshotPath, path, 1, 0);
    await expectRefused(path, /format version 1\.0 is older than this vmrun supports \(2\.x\): its device state cannot be read/);
  });

  it('a CPU this host cannot offer (CPUID features it lacks)', async () => {
    const path = join(tmp, 'foreign-cpu.vmsnap');
    rewriteSection(snapshotPath, path, (e) => e.kind === SectionKind.VcpuState && e.index === 0, (blob) => {
      const cpuid = stateRecord(blob, 9); // kvm_cpuid2: nent, padding, then 40-byte entries
      const n = cpuid.readUInt32LE(0);
      for (let i = 0; i < n; i++) {
        const e = 8 + i * 40;
        // Leaf 7.0 EDX: claim every feature bit.
        if (cpuid.readUInt32LE(e) === 7 && cpuid.readUInt32LE(e + 4) === 0) cpuid.writeUInt32LE(0xffffffff, e + 24);
      }
    });
    await expectRefused(path, /taken on a CPU with features this host lacks \(CPUID\.7\.0:EDX/);
  });

  it('a TSC frequency far from this host\'s: scaled where KVM can, else refused', async () => {
    const path = join(tmp, 'foreign-tsc.vmsnap');
    let savedKhz = 0;
    rewriteSection(snapshotPath, path, (e) => e.kind === SectionKind.VcpuState && e.index === 0, (blob) => {
      const tsc = stateRecord(blob, 8); // u32 kHz
      savedKhz = tsc.readUInt32LE(0);
      tsc.writeUInt32LE(Math.round(savedKhz * 1.001), 0); // 1000 ppm: four times the tolerance
    });
    expect(savedKhz).toBeGreaterThan(0);
    if (addon().hostReport().capabilities.TSC_CONTROL) {
      const r = await restoreInNewProcess(path);
      expect(r.err).toBe('');
      expect(lines(beforeSave + r.out)).toEqual(lines(reference));
    } else {
      await expectRefused(path, /TSC ran at \d+ kHz and this host's runs at \d+ kHz \(more than 250 ppm apart\).*no KVM_CAP_TSC_CONTROL/);
    }
  });

  it('metadata claiming a memory size vmrun cannot build', async () => {
    const path = join(tmp, 'huge.vmsnap');
    rewriteSection(snapshotPath, path, (e) => e.kind === SectionKind.Metadata, (bytes) => {
      // Same length, so the rest of the file stays in place: 99999999 bytes is not a
      // whole number of 2 MiB chunks, which no vmrun machine has.
      const text = bytes.toString('utf8');
      const edited = text.replace('"memoryBytes":67108864', '"memoryBytes":99999999');
      expect(edited).not.toBe(text);
      bytes.write(edited, 0, 'utf8');
    });
    await expectRefused(path, /the metadata does not describe a machine/);
    expect(readdirSync(join(tmp, 'cache', 'snapshots')).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('a file that is not a snapshot, and one that does not exist', async () => {
    const path = join(tmp, 'not-a-snapshot');
    writeFileSync(path, Buffer.alloc(8192, 7));
    await expectRefused(path, /not a vmrun snapshot/);
    const r = await restoreInNewProcess(join(tmp, 'missing.vmsnap'));
    expect(r.status).toBe(125);
    expect(r.err).toMatch(/^not-found: snapshot .*missing\.vmsnap: does not exist/);
  });

  it('leaves no partial file when the save fails', async () => {
    const m = Machine.boot({ kernel: COUNTER, memory: '64M', cmdline: CMDLINE });
    const dir = join(tmp, 'no-such-dir');
    await expect(m.snapshot(join(dir, 'x.vmsnap'))).rejects.toSatisfy((e) => isVmrunError(e));
    m.stop();
    await m.wait();
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
