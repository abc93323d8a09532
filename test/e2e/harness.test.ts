/**
 * Smoke test of the environment the e2e suite runs in (inside the nested-KVM
 * harness here, or on a host with hardware KVM): /dev/kvm is there, answers
 * KVM_GET_API_VERSION, and runs an unmodified guest that uses SSE, which the
 * host's PVM-backed KVM here cannot.
 */
import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, vmrun } from '../helpers/cli.js';

const inL1 = process.env.VMRUN_NESTED_L1 === '1';
const VMRUN_TIMEOUT_MS = 300_000;

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'e2e-harness-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the e2e environment', () => {
  it('has a /dev/kvm this user can open read-write', () => {
    expect(() => accessSync('/dev/kvm', constants.R_OK | constants.W_OK)).not.toThrow();
  });

  it('has a CPU with hardware virtualization (svm in the harness\'s L1)', () => {
    const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? [];
    if (inL1) expect(flags).toContain('svm');
    else expect(flags.some((f) => f === 'vmx' || f === 'svm')).toBe(true);
  });

  it('can hold unix sockets under $XDG_RUNTIME_DIR (paths on 9p cannot)', async () => {
    const dir = process.env.XDG_RUNTIME_DIR ?? work;
    const path = join(dir, `e2e-harness-${process.pid}.sock`);
    const server = createServer((socket) => socket.end('pong'));
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        let data = '';
        createConnection(path)
          .on('data', (d) => (data += d.toString()))
          .on('end', () => resolve(data))
          .on('error', reject);
      });
      expect(reply).toBe('pong');
    } finally {
      server.close();
    }
  });

  // probes/kvm-hold.c: without its VM, every test VM's start and end rewrites L1's
  // kernel text, which has wedged L1 under TCG; it takes the other CPUs offline for
  // its own VM's start, and must bring them back. Reading another process's fds
  // needs root, as CI runs.
  it.skipIf(!inL1 || process.getuid?.() !== 0)('holds a KVM VM for the whole run, with every CPU back online (harness L1, as root)', () => {
    const holders = readdirSync('/proc')
      .filter((pid) => /^\d+$/.test(pid))
      .filter((pid) => readOrEmpty(`/proc/${pid}/comm`).trim() === 'kvm-hold');
    expect(holders).toHaveLength(1);
    const fds = readdirSync(`/proc/${holders[0]}/fd`).map((fd) => readlinkOrEmpty(`/proc/${holders[0]}/fd/${fd}`));
    expect(fds).toContain('anon_inode:kvm-vm');
    expect(fds).toContain('anon_inode:kvm-vcpu:0');
    const cpus = (name: string) => readFileSync(`/sys/devices/system/cpu/${name}`, 'utf8').trim();
    expect(cpus('online')).toBe(cpus('present'));
  });

  // The vmrun runs are asynchronous and generously bounded: Node's start in L1 takes
  // over 100 s when the host is loaded (load 25-30 on 2 cores seen), and a
  // synchronous spawn that long also stalls the vitest worker's RPC.
  it('vmrun doctor reports hardware virtualization here', async () => {
    const r = await vmrun(['doctor', '--json'], { timeoutMs: VMRUN_TIMEOUT_MS });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.apiVersion).toBe(12);
    expect(report.nativeGuests).toBe(true);
    expect(report.virtualizationKind).toMatch(/^(svm|vmx)$/);
  });

  it('the SSE test guest, rejected by the PVM host, runs to completion through vmrun boot', async () => {
    const r = await vmrun(['boot', join(REPO, 'fixtures', 'guests', 'out', 'sse.elf'), '--memory', '32M'], { timeoutMs: VMRUN_TIMEOUT_MS });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // The guest adds and xors packed floats; the result is fixed by its source (fixtures/guests/README.md).
    expect(r.stdout).toContain('sse: 0x4090000040600000402000003fc00000\n');
    expect(r.stdout).toContain('guest: done');
  });
});

/** A file's text, or '' for a process that went away while it was read. */
function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function readlinkOrEmpty(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}
