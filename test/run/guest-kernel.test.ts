// Which kernel and guest init `vmrun run` picks for the architecture KVM runs here:
// the cache's latest-<arch> build and the init built for that architecture, told
// apart by its ELF header (a checkout shared by an x86_64 host and the aarch64
// harness's L1 holds both builds).
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVmrunError } from '../../src/errors.js';
import { findGuestInit, findGuestKernel, hostGuestArch } from '../../src/run/guest-kernel.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmrun-guest-kernel-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The first 20 bytes of an ELF executable for `machine` (e_machine at offset 18). */
function elf(machine: number): Buffer {
  const b = Buffer.alloc(64);
  b.write('\x7fELF', 0, 'latin1');
  b.writeUInt16LE(machine, 18);
  return b;
}

function caught(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('guest kernel and init per architecture', () => {
  it('maps Node architectures to guest architectures and refuses others in one line', () => {
    expect(hostGuestArch('x64')).toBe('x86_64');
    expect(hostGuestArch('arm64')).toBe('aarch64');
    const e = caught(() => hostGuestArch('riscv64'));
    expect(isVmrunError(e, 'host')).toBe(true);
    expect((e as Error).message).toBe('vmrun runs guests on x86_64 and arm64 hosts; this host is riscv64');
  });

  it("boots the cache's latest-<arch> build: vmlinux on x86_64, the Image on arm64", () => {
    const cache = join(dir, 'cache');
    for (const [key, file] of [['k86', 'vmlinux'], ['karm', 'Image']] as const) {
      mkdirSync(join(cache, 'kernel', key), { recursive: true });
      writeFileSync(join(cache, 'kernel', key, file), 'kernel');
    }
    symlinkSync('k86', join(cache, 'kernel', 'latest-x86_64'));
    symlinkSync('karm', join(cache, 'kernel', 'latest-aarch64'));
    const env = { VMRUN_CACHE: cache };
    expect(findGuestKernel(undefined, env, 'x86_64')).toBe(join(cache, 'kernel', 'latest-x86_64', 'vmlinux'));
    expect(findGuestKernel(undefined, env, 'aarch64')).toBe(join(cache, 'kernel', 'latest-aarch64', 'Image'));
    // --kernel wins, and one that does not exist is named.
    expect(findGuestKernel(join(cache, 'kernel', 'k86', 'vmlinux'), env, 'aarch64')).toBe(join(cache, 'kernel', 'k86', 'vmlinux'));
    expect((caught(() => findGuestKernel('/nonexistent/Image', env)) as Error).message).toBe('kernel /nonexistent/Image does not exist');
  });

  it('says how to build a missing kernel for the architecture', () => {
    const env = { VMRUN_CACHE: join(dir, 'empty-cache') };
    const e = caught(() => findGuestKernel(undefined, env, 'aarch64'));
    expect(isVmrunError(e, 'not-found')).toBe(true);
    expect((e as Error).message).toMatch(/^no aarch64 guest kernel yet: run guest\/kernel\/build.sh --arch aarch64 /);
  });

  it("takes the init built for the guest's architecture, never the other one", () => {
    const root = join(dir, 'checkout');
    const out = join(root, 'guest', 'init', 'out');
    mkdirSync(join(out, 'aarch64'), { recursive: true });
    writeFileSync(join(out, 'vmrun-init'), elf(62)); // the host's own build, x86_64
    expect(findGuestInit(root, {}, 'x86_64')).toBe(join(out, 'vmrun-init'));
    // No arm64 build yet: the x86_64 one is not taken for an arm64 guest.
    const e = caught(() => findGuestInit(root, {}, 'aarch64'));
    expect(isVmrunError(e, 'not-found')).toBe(true);
    expect((e as Error).message).toBe(`no aarch64 guest init in ${out}: run make -C guest/init aarch64`);
    writeFileSync(join(out, 'aarch64', 'vmrun-init'), elf(183));
    expect(findGuestInit(root, {}, 'aarch64')).toBe(join(out, 'aarch64', 'vmrun-init'));
    expect(findGuestInit(root, {}, 'x86_64')).toBe(join(out, 'vmrun-init'));
    // On an arm64 machine building natively, out/vmrun-init is the arm64 one.
    writeFileSync(join(out, 'vmrun-init'), elf(183));
    rmSync(join(out, 'aarch64'), { recursive: true });
    expect(findGuestInit(root, {}, 'aarch64')).toBe(join(out, 'vmrun-init'));
  });
});

describe('the kernel command line of image runs per architecture', () => {
  it('gives x86_64 its i8042 reset and timer arguments and arm64 none of them', async () => {
    const { guestCmdline } = await import('../../src/run/run-image.js');
    const x86 = guestCmdline(false, 'x86_64').split(' ');
    const arm = guestCmdline(false, 'aarch64').split(' ');
    for (const args of [x86, arm]) expect(args).toEqual(expect.arrayContaining(['console=ttyS0', 'panic=-1', 'quiet', 'rdinit=/.vmrun/init']));
    expect(x86).toEqual(expect.arrayContaining(['reboot=k', 'i8042.noaux', 'tsc=reliable', 'no_timer_check']));
    expect(arm.filter((a) => /^(reboot|i8042|tsc)|no_timer_check/.test(a))).toEqual([]);
  });
});
