// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
/**
 * Hermit entry versions 2 and 3 (hermit-entry 0.9.x) next to 4 (0.10.x): the boot
 * info in each one's layout, checked by test kernels that read it that way.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { vmrun } from '../helpers/cli.js';
import { buildHermitKernels, expectedUhyveTestTail, hermitKernel, makeMappedTree } from './hermit-fixtures.js';

beforeAll(() => buildHermitKernels(), 120_000);

describe('vmrun boot: Hermit entry versions 2 and 3', () => {
  it('entry version 2: the boot info without a device_tree field, everything after it 8 bytes lower', async () => {
    const r = await vmrun(['boot', hermitKernel('entry-v2'), '--memory', '32M'], { timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    const lines = r.stdout.split('\n');
    expect(lines[1]).toBe('boot: platform=1 cpus=1 ram=0x0-0x2000000 serial=0x800 pci=0');
    expect(lines[2]).toBe('kernel: start%2M=0x40000 code-in-image=yes boot-time=set');
    expect(lines).toEqual(['hermit: entry-v2', lines[1], lines[2], 'hermit: exit 0', '']);
    expect(r.status).toBe(0);
  });

  it('entry version 3: the same layout as 4, so the v2 interface test passes unchanged', async () => {
    // uhyve-v2 with its HERMIT note saying 3 (hermit-entry 0.9.3-0.9.10).
    const elf = readFileSync(hermitKernel('uhyve-v2'));
    const note = elf.indexOf(Buffer.from('HERMIT\0'));
    elf.writeUInt8(3, note + 8);
    const path = join(mkdtempSync(join(tmpdir(), 'vmrun-entry-v3-')), 'uhyve-v2.elf');
    writeFileSync(path, elf);
    const tree = makeMappedTree();
    const r = await vmrun(
      ['boot', path, '--memory', '64M', '--file-mapping', `${tree.data}:/data`, '-e', 'FOO=bar', '-e', 'GREETING=hello world', '--', 'one', 'two words', 'exit=7'],
      { env: { TMPDIR: tree.tmp }, timeoutMs: 60_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(7);
    const lines = r.stdout.split('\n').slice(0, -1);
    expect(lines).toContain('boot: platform=1 cpus=1 ram=0x0-0x4000000 serial=0x1030 pci=0');
    expect(lines).toContain('fdt: at=0x5000 size-ok=yes');
    const tail = expectedUhyveTestTail(2, 'uhyve-v2', basename(path));
    expect(lines.slice(lines.length - tail.length)).toEqual(tail);
  });
});
