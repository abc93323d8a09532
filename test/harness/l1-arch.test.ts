/**
 * The harness's --arch choice without booting anything: the options it parses and
 * the QEMU command line each architecture gets (what notes/arm64-harness.md measured
 * to work for aarch64).
 */
import { describe, expect, it } from 'vitest';
import { HarnessError } from './harness-error.js';
import { parseArguments } from './harness-options.js';
import { l1Arch } from './l1-arch.js';
import { qemuArguments } from './qemu-l1.js';

const launch = {
  kernel: '/k',
  initramfs: '/i',
  memoryMiB: 2048,
  cpus: 2,
  verbose: false,
  jobDir: '/tmp/job',
  imageDir: '/cache/img',
  consoleLog: '/tmp/job/console.log',
  heartbeatLog: '/tmp/job/heartbeat.log',
  qmpSocket: '/tmp/job/qmp',
  heartbeatS: 5,
  wedgeAfterS: 0,
};

/** The value that follows `flag` in `args`. */
const after = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

describe('nested-kvm --arch', () => {
  it('defaults to x86_64, takes aarch64, and refuses anything else by name', () => {
    expect(parseArguments(['--', 'true'])).toMatchObject({ arch: 'x86_64' });
    expect(parseArguments(['--arch', 'aarch64', '--', 'true'])).toMatchObject({ arch: 'aarch64', command: ['true'] });
    expect(() => parseArguments(['--arch', 'arm64', '--', 'true'])).toThrow(HarnessError);
    expect(() => parseArguments(['--arch', 'arm64', '--', 'true'])).toThrow(/--arch "arm64": expected one of x86_64, aarch64/);
  });

  it('boots aarch64 on virt with EL2 and GICv3, pauth-impdef, 9p on virtio-mmio, its console on ttyAMA0 and its own root', () => {
    const args = qemuArguments({ ...launch, arch: l1Arch('aarch64') });
    expect(after(args, '-machine')).toBe('virt,virtualization=on,gic-version=3');
    expect(after(args, '-cpu')).toBe('max,pauth-impdef=on');
    expect(args.filter((a) => a.startsWith('virtio-9p-device,'))).toEqual([
      'virtio-9p-device,fsdev=host0,mount_tag=host',
      'virtio-9p-device,fsdev=job0,mount_tag=job',
    ]);
    expect(args.some((a) => a.includes('virtio-9p-pci'))).toBe(false);
    const cmdline = after(args, '-append') ?? '';
    expect(cmdline).toMatch(/\bconsole=ttyAMA0\b/);
    expect(cmdline).toMatch(/\bnested_kvm\.root=l1\b/);
    expect(cmdline).toMatch(/\bnested_kvm\.no_heartbeat_port=1\b/);
    // One UART only: no heartbeat chardev.
    expect(args.filter((a) => a === '-serial')).toHaveLength(1);
  });

  it('keeps x86_64 as it was: q35, SVM-capable max CPU, 9p over PCI, ttyS0 and a heartbeat port, chroot into the host', () => {
    const args = qemuArguments({ ...launch, arch: l1Arch('x86_64') });
    expect(after(args, '-machine')).toBe('q35');
    expect(after(args, '-cpu')).toBe('max');
    // -virtfs, as before --arch existed (its default transport on q35 is virtio-9p-pci).
    expect(args.filter((a) => a === '-virtfs')).toHaveLength(2);
    expect(args.some((a) => a.startsWith('-fsdev'))).toBe(false);
    const cmdline = after(args, '-append') ?? '';
    expect(cmdline).toMatch(/\bconsole=ttyS0\b.*\bno_timer_check\b/);
    expect(cmdline).not.toMatch(/nested_kvm\.root=/);
    expect(args.filter((a) => a === '-serial')).toHaveLength(2);
  });
});
