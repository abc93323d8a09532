/**
 * The nested-KVM harness end to end, from the host: a real QEMU, a real L1 kernel,
 * real 9p. Each boot costs 10-20 s under TCG; the first run also builds the cache.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureL1Image } from './l1-image.js';
import { l1Arch } from './l1-arch.js';
import { ensureX86Qemu } from './x86-qemu.js';
import { HARNESS, runHarness, X86_QEMU_CLI } from './run-harness.js';

const BOOT_TEST_TIMEOUT_MS = 240_000;
/** A boot, the wedge, the bound and the report (sysrq output under TCG takes a while). */
const STALL_TEST_TIMEOUT_MS = 360_000;

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'nested-kvm-test-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('nested-kvm harness', () => {
  it(
    'runs the command in L1 with the host cwd, env and files, and passes its output and exit status',
    async () => {
      const tricky = `it's "quoted" $HOME \`x\`\nsecond line`;
      const script = [
        'echo hi',
        'echo to-stderr >&2',
        'pwd > out-cwd',
        'printf %s "$HARNESS_TEST_VALUE" > out-env',
        'printf %s "$VMRUN_NESTED_L1" > out-in-l1',
        'if test -c /dev/kvm; then echo yes; else echo no; fi > out-dev-kvm',
        // --private-tmp: TMPDIR is L1's own tmpfs, the cwd still the host's.
        'printf %s "$TMPDIR" > out-tmpdir',
        'stat -f -c %T "$TMPDIR" > out-tmpdir-fs',
        // The machine type names the QEMU that made it (pc-q35-10.0).
        'cat /sys/class/dmi/id/product_version > out-machine',
        'exit 7',
      ].join('; ');
      const run = await runHarness(HARNESS, ['--private-tmp', '--', 'sh', '-c', script], {
        cwd: scratch,
        env: { ...process.env, HARNESS_TEST_VALUE: tricky },
        timeoutMs: BOOT_TEST_TIMEOUT_MS,
      });
      expect(run.status, run.stderr).toBe(7);
      expect(run.stdout).toBe('hi\n');
      expect(run.stderr).toContain('to-stderr\n');
      expect(run.stderr).toMatch(/nested-kvm: QEMU start to \/dev\/kvm in L1: [\d.]+ s/);
      expect(run.stderr).toMatch(/nested-kvm: command ran [\d.]+ s in L1, exit status 7/);
      // The KVM holder says something only when it could not hold its VM.
      expect(run.stderr).not.toContain('kvm-hold');
      const written = (name: string) => readFileSync(join(scratch, name), 'utf8');
      expect(written('out-cwd').trim()).toBe(scratch);
      expect(written('out-env')).toBe(tricky);
      expect(written('out-in-l1')).toBe('1');
      expect(written('out-dev-kvm').trim()).toBe('yes');
      expect(written('out-tmpdir')).toBe(`/run/user/${process.getuid!()}/tmp`);
      expect(written('out-tmpdir-fs').trim()).toBe('tmpfs');
      // L1 ran under the staged QEMU the log names, not the host's (x86-qemu.js).
      const staged = /; qemu-system-x86_64 \d+:(\d+\.\d+)\S* from bookworm-backports\)/.exec(run.stderr);
      expect(staged, run.stderr).not.toBeNull();
      expect(written('out-machine').trim()).toBe(`pc-q35-${staged![1]}`);
    },
    BOOT_TEST_TIMEOUT_MS,
  );

  it('caches an uncompressed PVH vmlinux, so L1 skips decompressing XZ under TCG', () => {
    const image = ensureL1Image(() => {}, l1Arch('x86_64'));
    const manifest = JSON.parse(readFileSync(join(image.dir, 'manifest.json'), 'utf8'));
    expect(manifest.kernelFormat).toBe('vmlinux (PVH)');
    expect(manifest.modules).toEqual(expect.arrayContaining(['kvm', 'kvm_amd', '9p', '9pnet_virtio', 'virtio_pci']));
    expect(readFileSync(image.kernel).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
  }, BOOT_TEST_TIMEOUT_MS);

  it(
    'reports an L1 that cannot boot with the tail of its console and exit 125',
    async () => {
      // A cache entry with a corrupt initramfs: the kernel finds no init and panics.
      const image = ensureL1Image(() => {}, l1Arch('x86_64'));
      const cacheRoot = join(scratch, 'cache');
      const brokenImage = join(cacheRoot, 'nested-kvm', basename(image.dir));
      cpSync(image.dir, brokenImage, { recursive: true });
      writeFileSync(join(brokenImage, 'initramfs.cpio'), 'not a cpio archive');
      // The staged QEMU as it is (a link): a test downloads nothing.
      const qemu = ensureX86Qemu(() => {});
      symlinkSync(qemu.dir, join(cacheRoot, 'nested-kvm', basename(qemu.dir)));
      const run = await runHarness(HARNESS, ['--', 'true'], {
        env: { ...process.env, VMRUN_CACHE: cacheRoot },
        timeoutMs: BOOT_TEST_TIMEOUT_MS,
      });
      expect(run.stderr).not.toContain('staging QEMU');
      expect(run.status, run.stderr).toBe(125);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/nested-kvm: L1 ended \(QEMU exit status \d+\) without the command's exit status/);
      expect(run.stderr).toContain("--- last lines of L1's console ---");
      expect(run.stderr).toMatch(/Kernel panic/);
    },
    BOOT_TEST_TIMEOUT_MS,
  );

  it(
    "reports an L1 whose own kernel crashed while the command ran with that line and exit 122 (the e2e runner re-runs it)",
    async () => {
      // sysrq c: the kernel panics at once, as L1's did under an emulation fault on 2026-12-07.
      const run = await runHarness(HARNESS, ['--', 'sh', '-c', 'echo c > /proc/sysrq-trigger; sleep 600'], { timeoutMs: BOOT_TEST_TIMEOUT_MS });
      expect(run.status, run.stderr).toBe(122);
      expect(run.stderr).toMatch(/nested-kvm: L1's kernel crashed \(\[\s*[\d.]+\] Kernel panic - not syncing: sysrq triggered crash\); L1 ended \(QEMU exit status \d+\) without the command's exit status/);
      expect(run.stderr).toContain("--- last lines of L1's console ---");
    },
    BOOT_TEST_TIMEOUT_MS,
  );

  it(
    'kills QEMU when --timeout expires and exits 124',
    async () => {
      const run = await runHarness(HARNESS, ['--timeout', '3', '--', 'sleep', '600'], {
        timeoutMs: 120_000,
      });
      expect(run.status, run.stderr).toBe(124);
      expect(run.stderr).toContain('nested-kvm: --timeout 3 s expired; QEMU killed');
      // 3 s plus the cache check; far below the 600 s the command wanted.
      expect(run.elapsedMs).toBeLessThan(30_000);
    },
    120_000,
  );

  it(
    'catches a wedged L1 within --stall-timeout, prints what explains it, and exits 123',
    async () => {
      // The test hook wedges L1 3 s into the command: a busy loop on each vCPU, every
      // other process (the command, the heartbeat) frozen.
      const boundS = 20;
      const run = await runHarness(HARNESS, ['--stall-timeout', String(boundS), '--', 'sh', '-c', 'echo started; sleep 600'], {
        env: { ...process.env, NESTED_KVM_TEST_WEDGE_AFTER_S: '3' },
        timeoutMs: STALL_TEST_TIMEOUT_MS,
      });
      expect(run.status, run.stderr).toBe(123);
      expect(run.stdout).toBe('started\n');
      const caught = /nested-kvm: L1 stalled: no heartbeat from L1 since the last one (\d+) s ago/.exec(run.stderr);
      expect(caught, run.stderr).not.toBeNull();
      // Caught at the bound: the watchdog looks every second.
      expect(Number(caught![1])).toBeGreaterThanOrEqual(boundS);
      expect(Number(caught![1])).toBeLessThanOrEqual(boundS + 3);
      expect(run.stderr).toContain(`nested-kvm: L1 stalled (--stall-timeout ${boundS} s); QEMU killed; what explains it follows`);
      // Explained: QEMU's vCPU threads on the host, every vCPU's registers, L1's own
      // backtraces of both CPUs and its task list (sysrq l and t).
      expect(run.stderr).toMatch(/^ {2}CPU 0\/TCG +tid +\d+ +state [A-Z] +\d+% CPU$/m);
      expect(run.stderr).toMatch(/^CPU#0:\n {2}[0-9a-f]{16} /m);
      expect(run.stderr).toMatch(/^CPU#1:\n {2}[0-9a-f]{16} /m);
      expect(run.stderr).toMatch(/^RIP=[0-9a-f]{16} RFL=/m);
      // ... and the code at those instruction pointers, read from guest memory.
      expect(run.stderr).toMatch(/^CPU#0 [0-9a-f]{16} .+: (?:[0-9a-f]{2} ){15}[0-9a-f]{2}$/m);
      expect(run.stderr).toContain('sysrq: Show backtrace of all active CPUs');
      expect(run.stderr).toMatch(/NMI backtrace for cpu 0/);
      expect(run.stderr).toMatch(/NMI backtrace for cpu 1/);
      expect(run.stderr).toContain('sysrq: Show State');
      expect(run.stderr).not.toContain('command ran');
    },
    STALL_TEST_TIMEOUT_MS,
  );

  it('says what to do when apt has no bookworm-backports, the x86 QEMU\'s suite', async () => {
    // apt itself, reading an empty set of lists (APT_CONFIG): what a host without the suite sees.
    const apt = join(scratch, 'apt-without-backports');
    mkdirSync(join(apt, 'lists', 'partial'), { recursive: true });
    mkdirSync(join(apt, 'cache'));
    writeFileSync(join(apt, 'apt.conf'), `Dir::State::lists "${join(apt, 'lists')}";\nDir::Cache "${join(apt, 'cache')}";\n`);
    const cacheRoot = join(scratch, 'no-backports-cache');
    const run = await runHarness(process.execPath, [X86_QEMU_CLI], {
      env: { ...process.env, APT_CONFIG: join(apt, 'apt.conf'), VMRUN_CACHE: cacheRoot },
      timeoutMs: 60_000,
    });
    expect(run.status).toBe(125);
    expect(run.stderr).toBe(
      'x86-qemu: apt knows no qemu-system-x86, qemu-system-data, seabios in bookworm-backports; run scripts/setup.sh (it adds bookworm-backports to apt\'s sources)\n',
    );
    expect(readdirSync(join(cacheRoot, 'nested-kvm'))).toEqual([]); // nothing staged, nothing memoized
  });

  it('tells the user to run apt-get update when the kernel package is unknown to apt', async () => {
    const cacheRoot = join(scratch, 'unknown-kernel-cache');
    const run = await runHarness(HARNESS, ['--', 'true'], {
      env: { ...process.env, VMRUN_CACHE: cacheRoot, VMRUN_L1_KERNEL_PACKAGE: 'linux-image-0.0.0-0-nonexistent' },
      timeoutMs: 60_000,
    });
    expect(run.status).toBe(125);
    expect(run.stderr).toBe(
      'nested-kvm: package linux-image-0.0.0-0-nonexistent (VMRUN_L1_KERNEL_PACKAGE) is unknown to apt; run: apt-get update\n',
    );
    expect(readdirSync(join(cacheRoot, 'nested-kvm'))).toEqual([]); // nothing half-built
  });

  it.each([
    [['--memory', 'lots', '--', 'true'], '--memory "lots": expected a size from 512M to 1024G'],
    [['--cpus', '0', '--', 'true'], '--cpus "0": expected a whole number from 1'],
    [['--timeout'], '--timeout needs a value'],
    [['--stall-timeout', '0', '--', 'true'], '--stall-timeout "0": expected a whole number from 1'],
    [['--idle-timeout', 'soon', '--', 'true'], '--idle-timeout "soon": expected a whole number from 1'],
    [['--frobnicate', '--', 'true'], 'unknown option "--frobnicate" (the command goes after --)'],
    [['--cpus', '2'], 'no command: give it after --'],
  ])('rejects bad arguments %j with exit 125 before booting anything', async (args, message) => {
    const run = await runHarness(HARNESS, args, { timeoutMs: 30_000 });
    expect(run.status).toBe(125);
    expect(run.stderr).toContain(`nested-kvm: ${message}`);
    expect(run.stderr).toContain('usage: test/harness/nested-kvm');
    expect(run.stderr).not.toContain('L1 image');
  });
});
