// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
/**
 * The Hermit path through the library API (Machine.boot with guestArgs,
 * guestEnv and fileMappings), and the multi-vCPU boot.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Machine } from '../../src/index.js';
import { addon } from '../../src/native/addon.js';
import { buildHermitKernels, expectedUhyveTestTail, hermitKernel, makeMappedTree } from './hermit-fixtures.js';

beforeAll(() => buildHermitKernels(), 120_000);

/** This process's umask (which also applies to files the guest creates through it). */
function currentUmask(): number {
  const mask = process.umask(0);
  process.umask(mask);
  return mask;
}

const collect = async (m: Machine): Promise<string> => {
  let out = '';
  for await (const chunk of m.output) out += chunk.toString();
  return out;
};

describe('library: Hermit kernels', () => {
  it('boots a v1 kernel with arguments, environment and a file mapping', async () => {
    const tree = makeMappedTree();
    const previousTmp = process.env.TMPDIR;
    process.env.TMPDIR = tree.tmp;  // read by the native side when the guest creates a private file
    try {
      const path = hermitKernel('uhyve-v1');
      const m = Machine.boot({
        kernel: path,
        memory: '64M',
        guestArgs: ['one', 'two words', 'exit=7'],
        guestEnv: ['FOO=bar', 'GREETING=hello world'],
        fileMappings: [`${tree.data}:/data`],
      });
      expect(m.kernelFormat).toBe('hermit');
      const [out, exit] = await Promise.all([collect(m), m.wait()]);
      expect(exit).toMatchObject({ reason: 'exit-code', exitCode: 7, message: '' });
      const lines = out.split('\n').slice(0, -1);
      const tail = expectedUhyveTestTail(1, 'uhyve-v1', basename(path));
      expect(lines.slice(lines.length - tail.length)).toEqual(tail);
      expect(readFileSync(join(tree.data, 'output.txt'), 'utf8')).toBe('written by uhyve-v1\n');
      expect(readdirSync(tree.tmp)).toEqual([]);
    } finally {
      if (previousTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previousTmp;
    }
  });

  it('reports a parameter block outside RAM as a guest error with exit 125', async () => {
    const m = Machine.boot({ kernel: hermitKernel('uhyve-v2'), memory: '32M', guestArgs: ['bad-block'] });
    const [out, exit] = await Promise.all([collect(m), m.wait()]);
    expect(out).toContain('bad-block: open with its parameter block outside RAM');
    expect(exit.reason).toBe('guest-error');
    expect(exit.exitCode).toBe(125);
    expect(exit.message).toMatch(/FileOpen hypercall \(port 0x1110\) points at 0xf0000000, which is not in guest RAM/);
  });

  it('bounds the guest\'s private files (count, one file, all) and never creates a setuid file', async () => {
    const tree = makeMappedTree();
    const previousTmp = process.env.TMPDIR;
    process.env.TMPDIR = tree.tmp;
    try {
      const limits = addon().hermitTempFileLimits;
      const m = Machine.boot({
        kernel: hermitKernel('uhyve-v2'),
        memory: '64M',
        guestArgs: ['temp-limits', `temp-files=${limits.files}`, `temp-file-bytes=${limits.fileBytes}`, `temp-bytes=${limits.totalBytes}`],
        fileMappings: [`${tree.data}:/data`],
      });
      const [out, exit] = await Promise.all([collect(m), m.wait()]);
      expect(exit).toMatchObject({ reason: 'exit-code', exitCode: 0 });
      const whole = Math.floor(limits.totalBytes / limits.fileBytes);
      expect(out.split('\n').filter((l) => /^(mode|temp-\w+):/.test(l))).toEqual([
        'mode: create=fd close=0',
        `temp-count: created=${limits.files} then=-28`, // ENOSPC
        'temp-size: straddling-write=1 next-write=-27', // a short write up to the bound, then EFBIG
        `temp-total: files-filled=${whole} then=-28`, // ENOSPC
      ]);
      // Asked for 06755: the guest gets the permission bits only.
      expect(statSync(join(tree.data, 'setuid')).mode & 0o7777).toBe(0o755 & ~currentUmask());
      expect(readdirSync(tree.tmp)).toEqual([]);
    } finally {
      if (previousTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previousTmp;
    }
  });

  it('rejects a bad --file-mapping before anything boots', () => {
    const tree = makeMappedTree();
    const boot = (fileMappings: string[]) => () => Machine.boot({ kernel: hermitKernel('minimal'), memory: '16M', fileMappings });
    expect(boot(['no-colon'])).toThrow(/--file-mapping no-colon: expected HOST_PATH:GUEST_PATH/);
    expect(boot([`${tree.data}:relative`])).toThrow(/the guest path relative must be absolute/);
    expect(boot([`${tree.root}/missing:/data`])).toThrow(/the host path .*missing does not exist/);
    expect(boot([`${tree.data}:/data`, `${tree.outside}:/data/`])).toThrow(/the guest path \/data is mapped twice/);
    expect(boot([`${tree.data}:/a/../b`])).toThrow(/must not contain '\.\.'/);
  });

  it('rejects an environment entry that is not KEY=VALUE or host', () => {
    expect(() => Machine.boot({ kernel: hermitKernel('minimal'), memory: '16M', guestEnv: ['=x'] })).toThrow(
      /--env =x: expected KEY=VALUE, or host for the host's environment/,
    );
  });

  // All vCPUs start at the entry at once (uhyve's model). This needs the backend to
  // make every vCPU with a start state runnable (KVM_SET_MP_STATE RUNNABLE in
  // KvmVcpu::set_start_state): with an in-kernel LAPIC, KVM parks APs until a SIPI.
  // Verified with that one change in a private copy; flip to it() once it lands.
  it('boots 4 vCPUs, each entering the kernel with its own id', async () => {
    const m = Machine.boot({ kernel: hermitKernel('smp'), memory: '32M', cpus: 4 });
    const [out, exit] = await Promise.all([collect(m), m.wait()]);
    expect(out).toBe(
      'hermit: smp\nsmp: cpus=4\ncpu 1 online\ncpu 2 online\ncpu 3 online\nsmp: all 4 cpus online\nhermit: exit 0\n',
    );
    expect(exit.exitCode).toBe(0);
  });
});
