// vmrun-test: needs /dev/kvm (boots guests; see test/harness/host-kvm-tests.js)
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { GUESTS, linesWith, vmrun } from '../helpers/cli.js';

// The fixtures in fixtures/guests/ report what the VMM gave them (see its README);
// these tests boot them through the real CLI on this host's /dev/kvm.

const tmp = mkdtempSync(join(tmpdir(), 'vmrun-boot-'));

describe('vmrun boot: Linux 64-bit boot protocol', () => {
  for (const kernel of ['hello.elf', 'hello.bzImage']) {
    it(`${kernel}: the command line reaches the guest unchanged`, async () => {
      const cmdline = 'console=ttyS0 quiet key="a b" x=1';
      const r = await vmrun(['boot', join(GUESTS, kernel), '--memory', '64M', '--cmdline', cmdline]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(linesWith(r.stdout, 'cmdline:')).toEqual([cmdline]);
      expect(r.stdout).toContain('guest: done');
    });
  }

  it('the e820 map matches --memory below the MMIO hole', async () => {
    const r = await vmrun(['boot', join(GUESTS, 'hello.elf'), '--memory', '96M']);
    expect(r.status).toBe(0);
    expect(linesWith(r.stdout, 'e820:')).toEqual([
      '0x0 0x9fc00 1',
      '0x9fc00 0x400 2',
      `0x100000 ${(96 * 2 ** 20 - 0x100000).toString(16).replace(/^/, '0x')} 1`,
    ]);
  });

  it('memory larger than 3 GiB is split around the 32-bit MMIO hole', async () => {
    const r = await vmrun(['boot', join(GUESTS, 'hello.elf'), '--memory', '4G']);
    expect(r.status).toBe(0);
    const ram = linesWith(r.stdout, 'e820:').filter((l) => l.endsWith(' 1'));
    expect(ram).toEqual(['0x0 0x9fc00 1', '0x100000 0xbff00000 1', '0x100000000 0x40000000 1']);
  });

  it('an initrd arrives intact (CRC-32 computed by the guest)', async () => {
    const initrd = randomBytes(48 * 1024);
    const path = join(tmp, 'initrd.bin');
    writeFileSync(path, initrd);
    const r = await vmrun(['boot', join(GUESTS, 'hello.bzImage'), '--memory', '64M', '--initrd', path], { timeoutMs: 60000 });
    expect(r.status).toBe(0);
    const [line] = linesWith(r.stdout, 'initrd:');
    const m = /^0x([0-9a-f]+) (\d+) crc32=([0-9a-f]{8})$/.exec(line ?? '');
    expect(m, `initrd line: ${line}`).not.toBeNull();
    expect(Number(m![2])).toBe(initrd.length);
    expect(m![3]).toBe(crc32(initrd).toString(16).padStart(8, '0'));
    // Placed page-aligned, above the kernel and inside RAM.
    const address = parseInt(m![1]!, 16);
    expect(address % 4096).toBe(0);
    expect(address + initrd.length).toBeLessThanOrEqual(64 * 2 ** 20);
  });

  it('without an initrd the guest is told there is none', async () => {
    const r = await vmrun(['boot', join(GUESTS, 'hello.elf'), '--memory', '32M']);
    expect(linesWith(r.stdout, 'initrd:')).toEqual(['none']);
  });
});

describe('vmrun boot: devices and interrupts', () => {
  it('LAPIC timer and UART THRE interrupts reach the guest', async () => {
    const r = await vmrun(['boot', join(GUESTS, 'interrupts.elf'), '--memory', '32M']);
    expect(r.status).toBe(0);
    expect(linesWith(r.stdout, 'tick')).toEqual(['1', '2', '3', '4', '5']);
    expect(linesWith(r.stdout, 'uart-irq:')).toEqual(['thre']);
    expect(r.stdout).toContain('guest: done');
  });

  it('MMIO outside RAM and devices reads all ones and ignores writes; RAM and LAPIC still work', async () => {
    const r = await vmrun(['boot', join(GUESTS, 'mmio.elf'), '--memory', '32M']);
    expect(r.status).toBe(0);
    expect(linesWith(r.stdout, 'mmio-read:')).toEqual(['0xffffffff']);
    expect(linesWith(r.stdout, 'mmio-read8:')).toEqual(['0xff']);
    expect(linesWith(r.stdout, 'mmio-read64:')).toEqual(['0xffffffffffffffff']);
    expect(linesWith(r.stdout, 'mmio-read-after-write:')).toEqual(['0xffffffff']);
    expect(linesWith(r.stdout, 'ram-read:')).toEqual(['0x600dcafe']);
    // The LAPIC version's low byte is 0x14 on KVM's in-kernel APIC.
    expect(linesWith(r.stdout, 'lapic-version:')[0]).toMatch(/14$/);
  });

  it('--stats reports exit counts and run time', async () => {
    const r = await vmrun(['boot', join(GUESTS, 'hello.elf'), '--memory', '32M', '--stats']);
    expect(r.status).toBe(0);
    const stats = JSON.parse(r.stderr.replace(/^vmrun: /, ''));
    expect(stats.exits['port-io']).toBeGreaterThan(50);
    expect(stats.consoleBytes).toBe(Buffer.byteLength(r.stdout));
  });
});

describe('vmrun boot: failures are one line and exit 125', () => {
  const oneLine125 = (r: { status: number | null; stderr: string }, pattern: RegExp) => {
    expect(r.status).toBe(125);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^vmrun: /);
    expect(lines[0]).toMatch(pattern);
  };

  it('a missing kernel file', async () => {
    oneLine125(await vmrun(['boot', join(tmp, 'nope.elf')]), /nope\.elf does not exist/);
  });

  it('a file that is not a kernel', async () => {
    const p = join(tmp, 'text.bin');
    writeFileSync(p, 'hello world, not a kernel\n'.repeat(100));
    oneLine125(await vmrun(['boot', p]), /text\.bin: neither an ELF file nor a bzImage/);
  });

  it('a truncated bzImage', async () => {
    const whole = readFileSync(join(GUESTS, 'hello.bzImage'));
    const p = join(tmp, 'truncated.bzImage');
    writeFileSync(p, whole.subarray(0, whole.length - 700));
    oneLine125(await vmrun(['boot', p]), /truncated/);
  });

  it('a truncated ELF kernel', async () => {
    const whole = readFileSync(join(GUESTS, 'hello.elf'));
    const p = join(tmp, 'truncated.elf');
    writeFileSync(p, whole.subarray(0, 200));
    oneLine125(await vmrun(['boot', p]), /truncated/);
  });

  it('a KVM device path that is not KVM', async () => {
    oneLine125(await vmrun(['boot', join(GUESTS, 'hello.elf'), '--kvm-device', '/dev/null']), /\/dev\/null is not a KVM device/);
  });

  it('a KVM device that does not exist', async () => {
    oneLine125(await vmrun(['boot', join(GUESTS, 'hello.elf'), '--kvm-device', join(tmp, 'kvm')]), /does not exist: this host has no KVM/);
  });

  it('an instruction the host cannot emulate names the instruction and the way out', async () => {
    const host = await vmrun(['doctor', '--json']);
    const nativeGuests = JSON.parse(host.stdout).nativeGuests as boolean;
    if (nativeGuests) {
      console.log('skipped here: this host runs guests natively, so SSE does not fail (the e2e suite covers it)');
      return;
    }
    const r = await vmrun(['boot', join(GUESTS, 'sse.elf'), '--memory', '32M']);
    oneLine125(r, /could not emulate the instruction at RIP 0x[0-9a-f]+ \(bytes 0f 57[^)]*\) \[an SSE instruction\].*hardware virtualization/);
    expect(r.stdout).toContain('guest: sse');
  });

  it('a triple fault', async () => {
    oneLine125(await vmrun(['boot', join(GUESTS, 'triple-fault.elf'), '--memory', '32M']), /triple-faulted/);
  });

  it('bad sizes and counts', async () => {
    oneLine125(await vmrun(['boot', join(GUESTS, 'hello.elf'), '--memory', '12Q']), /--memory "12Q" is not a size/);
    oneLine125(await vmrun(['boot', join(GUESTS, 'hello.elf'), '--memory', '8M']), /--memory 8M is out of range/);
    oneLine125(await vmrun(['boot', join(GUESTS, 'hello.elf'), '--cpus', '0']), /--cpus 0 is out of range/);
  });

  it('--timeout stops a guest that does not finish', async () => {
    const r = await vmrun(['boot', join(GUESTS, 'counter.elf'), '--memory', '64M', '--timeout', '1', '--cmdline', 'limit=100000']);
    oneLine125(r, /did not finish within 1 s/);
  });
});
