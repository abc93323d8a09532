/**
 * Repeatable flags take one value each, as docker's do: `--file-mapping A:/data KERNEL`
 * must not take KERNEL as a second mapping (oclif's default for `multiple` flags is to
 * take every following word), which made `vmrun boot` look for a kernel named after the
 * first application argument. A KVM device that does not exist stops the boot right
 * after the kernel was read, so the error says how far the arguments got.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, vmrun } from '../helpers/cli.js';

const KERNEL = join(REPO, 'fixtures', 'hermit', 'out', 'minimal.elf');

describe('repeatable flags before the positional arguments', () => {
  it('vmrun boot --file-mapping H:G -e K=V KERNEL -- ARGS reads KERNEL as the kernel', async () => {
    const r = await vmrun(['boot', '--kvm-device', '/nonexistent/kvm', '--file-mapping', '/tmp:/data', '-e', 'A=B', '-e', 'C=D', KERNEL, '--', 'x=1']);
    expect(r.stderr).toBe('vmrun: /nonexistent/kvm does not exist: this host has no KVM (enable virtualization, or load kvm_intel/kvm_amd)\n');
    expect(r.status).toBe(125);
  });
});
