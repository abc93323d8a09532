// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
/**
 * Hermit test kernels booted through the CLI (`vmrun boot KERNEL ARGS...`) on this
 * host's /dev/kvm: the uhyve boot state, both hypercall interface versions, ET_DYN
 * and ET_EXEC images, file mappings and their escapes, and the exit code.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { nativeGuests } from '../harness/native-guests.js';
import { vmrun } from '../helpers/cli.js';
import { buildHermitKernels, expectedUhyveTestTail, hermitKernel, makeMappedTree } from './hermit-fixtures.js';

beforeAll(() => buildHermitKernels(), 120_000);

const variants = [
  { kernel: 'uhyve-v1', v: 1, serial: '0x800', startMod2M: '0x40000' },
  { kernel: 'uhyve-v2', v: 2, serial: '0x1030', startMod2M: '0x40000' },
  // ET_EXEC, linked at 0x400000: loaded at its own address.
  { kernel: 'uhyve-v2-exec', v: 2, serial: '0x1030', startMod2M: '0x0' },
] as const;

describe('vmrun boot: Hermit kernels (uhyve interface)', () => {
  for (const { kernel, v, serial, startMod2M } of variants) {
    it(`${kernel}: boot state, hypercalls, files and exit code`, async () => {
      const tree = makeMappedTree();
      const path = hermitKernel(kernel);
      const r = await vmrun(
        ['boot', path, '--memory', '64M', '--file-mapping', `${tree.data}:/data`, '-e', 'FOO=bar', '-e', 'GREETING=hello world', '--', 'one', 'two words', 'exit=7'],
        { env: { TMPDIR: tree.tmp }, timeoutMs: 60_000 },
      );
      expect(r.stderr).toBe('');
      expect(r.status).toBe(7);
      expect(r.stdout.split('\n').slice(0, -1)).toEqual([
        `hermit: ${kernel}`,
        `boot: platform=1 cpus=1 ram=0x0-0x4000000 serial=${serial} pci=0`,
        `kernel: start%2M=${startMod2M} entry-in-image=yes code-in-image=yes`,
        // __thread uint64_t tls_words[3]: 24 bytes, 16-aligned section.
        'tls: filesz=24 memsz=24 align=16 in-image=yes',
        'boot-time: set',
        'relocation: relocated-pointer-ok',
        'fdt: at=0x5000 size-ok=yes',
        'fdt: compatible=hermit,uhyve',
        'fdt: memory-size=0x4000000',
        ...expectedUhyveTestTail(v, kernel, basename(path)),
      ]);
      // What the guest wrote is on the host; nothing escaped the mapping.
      expect(readFileSync(join(tree.data, 'output.txt'), 'utf8')).toBe(`written by ${kernel}\n`);
      expect(readdirSync(tree.outside)).toEqual(['secret.txt']);
      // The private directory for /tmp/* files (one left behind on purpose) is gone.
      expect(readdirSync(tree.tmp)).toEqual([]);
    });
  }

  it('a parameter block outside guest RAM stops the guest with 125 and says which hypercall', async () => {
    for (const [kernel, what] of [
      ['uhyve-v1', "Open hypercall (port 0x440)"],
      ['uhyve-v2', "FileOpen hypercall (port 0x1110)"],
    ] as const) {
      const r = await vmrun(['boot', hermitKernel(kernel), '--memory', '32M', '--', 'bad-block']);
      expect(r.status).toBe(125);
      expect(r.stdout).toContain('bad-block: open with its parameter block outside RAM');
      expect(r.stdout).not.toContain('the VMM let the guest continue');
      expect(r.stderr).toBe(`vmrun: guest stopped: the Hermit guest's ${what} points at 0xf0000000, which is not in guest RAM\n`);
    }
  });

  it('the exit code is the guest\'s, 0 included', async () => {
    const zero = await vmrun(['boot', hermitKernel('minimal'), '--memory', '16M']);
    expect(zero).toEqual({ status: 0, stdout: 'hermit: minimal\nhermit: exit 0\n', stderr: '' });
    const r = await vmrun(['boot', hermitKernel('uhyve-v2'), '--memory', '32M', '--', 'exit=42']);
    expect(r.status).toBe(42);
  });

  it('-e host passes the host environment', async () => {
    const r = await vmrun(['boot', hermitKernel('uhyve-v2'), '--memory', '32M', '-e', 'host', '-e', 'EXTRA=1'], { env: { VMRUN_HERMIT_PROBE: 'from host' } });
    expect(r.status).toBe(0);
    const bootargs = /^fdt: bootargs=(.*)$/m.exec(r.stdout)?.[1] ?? '';
    expect(bootargs).toContain("env=VMRUN_HERMIT_PROBE='from host'");
    expect(bootargs).toContain(`env=HOME=${process.env.HOME}`);
    expect(bootargs.endsWith('env=EXTRA=1')).toBe(true);
  });

  it('--stats reports hypercall exits and run time', async () => {
    const r = await vmrun(['boot', hermitKernel('minimal'), '--memory', '16M', '--stats']);
    expect(r.status).toBe(0);
    const stats = JSON.parse(/^vmrun: (.*)$/m.exec(r.stderr)?.[1] ?? 'null') as { exits: Record<string, number>; runSeconds: number };
    // "hermit: minimal\n", "hermit: exit 0\n" (one SerialWriteBuffer each) and Exit.
    expect(stats.exits['port-io']).toBeGreaterThanOrEqual(3);
    expect(stats.runSeconds).toBeGreaterThan(0);
    expect(stats.runSeconds).toBeLessThan(10);
  });

  it('files created outside the mappings never reach the host path they name', async () => {
    const tree = makeMappedTree();
    const r = await vmrun(['boot', hermitKernel('uhyve-v2'), '--memory', '32M'], { env: { TMPDIR: tree.tmp } });
    expect(r.status).toBe(0);
    // Unmapped: /data/* is not there, so the guest's output.txt went to the private directory.
    expect(r.stdout).toContain('input: open=failed');
    expect(existsSync('/data/output.txt')).toBe(false);
    expect(existsSync(join(tree.data, 'output.txt'))).toBe(false);
    expect(readdirSync(tree.tmp)).toEqual([]);
  });

  it('an instruction the host KVM cannot run ends with 125 and says why in words', async () => {
    const verdict = nativeGuests();
    const r = await vmrun(['boot', hermitKernel('sse'), '--memory', '32M'], { timeoutMs: 60_000 });
    if (verdict.nativeGuests) {
      // Here SSE runs: the kernel completes (test/e2e/hermit.test.ts covers it too).
      expect(r.status).toBe(0);
      return;
    }
    console.log(`sse.elf on this host's KVM: ${verdict.reason}`);
    expect(r.status).toBe(125);
    expect(r.stdout).toBe('hermit: sse\n');
    expect(r.stderr).toMatch(/^vmrun: guest stopped: KVM could not emulate the instruction at RIP 0x[0-9a-f]+ \(bytes [0-9a-f ]+\)/);
    expect(r.stderr).toContain('real guests need a host with hardware virtualization (vmx/svm), such as the nested harness');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
