// The Linux guest side of `vmrun run`, in real guests: vmrun's guest kernel boots an
// initramfs built by src/initramfs (busybox as the "image" + vmrun-init + a run
// configuration) under QEMU's microvm, and the workload's output and exit status
// come back the way the VMM will see them (serial console, port 0xf4).
//
// Uses KVM inside the nested harness (VMRUN_NESTED_L1=1), QEMU TCG elsewhere:
//   test/harness/nested-kvm -- npx vitest run --config test/e2e/guest-init.vitest.config.ts
//   npx vitest run --config test/e2e/guest-init.vitest.config.ts      (TCG, slower)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CpioEntry } from '../../src/initramfs/cpio-newc.js';
import { buildImageInitramfs, GUEST_INIT_CMDLINE } from '../../src/initramfs/image-initramfs.js';
import { encodeRunConfig, type GuestRunConfig } from '../../src/initramfs/run-config.js';
import { cpioEntriesOfRootfs } from '../../src/initramfs/rootfs-entries.js';
import { Machine } from '../../src/machine/machine.js';
import { ImageStore, pullImage, streamRootfs } from '../../src/oci/index.js';
import { buildLayer, writeOciLayout } from '../oci/image-builder.js';
import { resolveRunSpec } from '../../src/run/run-spec.js';

const repo = resolve(import.meta.dirname, '../..');
const BUSYBOX = '/bin/busybox';
const QEMU = 'qemu-system-x86_64';
const BOOT_TIMEOUT_MS = 240_000;
const useKvm = process.env.VMRUN_NESTED_L1 === '1' && existsSync('/dev/kvm');

function missingPrerequisite(): string | undefined {
  if (spawnSync(QEMU, ['--version']).status !== 0) return `${QEMU} is not installed (apt-get install qemu-system-x86)`;
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} is missing (apt-get install busybox-static)`;
  if (!existsSync('/usr/src/linux-source-6.1.tar.xz') && !process.env.VMRUN_GUEST_KERNEL) return 'no kernel source (apt-get install linux-source-6.1) and no VMRUN_GUEST_KERNEL';
  return undefined;
}
const skipReason = missingPrerequisite();
if (skipReason) console.warn(`guest-init e2e skipped: ${skipReason}`);
const ADDON = join(repo, 'build/native/Release/vmrun_native.node');
// This project's host KVM (PVM) cannot run Linux guests; vmrun's VMM runs them in L1.
const vmmSkipReason = skipReason ?? (!useKvm ? 'vmrun\'s own VMM needs a KVM that runs Linux guests: run inside test/harness/nested-kvm' : !existsSync(ADDON) ? `the native addon is not built (${ADDON}): npm run build:native` : undefined);
if (vmmSkipReason) console.warn(`guest-init through vmrun's VMM skipped: ${vmmSkipReason}`);

let work: string;
let kernel: string;
let initramfs: string;

/** The guest kernel from guest/kernel/build.sh (cached; builds in ~8 min the first time). */
function guestKernel(): string {
  if (process.env.VMRUN_GUEST_KERNEL) return process.env.VMRUN_GUEST_KERNEL;
  const r = spawnSync(join(repo, 'guest/kernel/build.sh'), { encoding: 'utf8', timeout: 30 * 60_000 });
  const m = /^bzImage: (.+)$/m.exec(r.stdout);
  if (r.status !== 0 || !m) throw new Error(`guest/kernel/build.sh failed:\n${r.stdout}\n${r.stderr}`);
  return m[1]!;
}

function buildInit(): string {
  const r = spawnSync('make', ['-s', '-C', join(repo, 'guest/init')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make -C guest/init failed:\n${r.stderr}`);
  return join(repo, 'guest/init/out/vmrun-init');
}

const APPLETS = ['sh', 'echo', 'cat', 'id', 'pwd', 'hostname', 'stat', 'ls', 'env', 'kill', 'stty', 'test', 'sleep', 'mount', 'chmod', 'true', 'grep'];
const root = { uid: 0, gid: 0, mtime: 1_700_000_000, size: 0 };

/** A tiny "image": static busybox, a hardlink to it, applet symlinks, passwd and group. */
function busyboxImage(): CpioEntry[] {
  const busybox = readFileSync(BUSYBOX);
  const text = (path: string, body: string, mode = 0o644): CpioEntry => ({ ...root, path, type: 'file', mode, size: Buffer.byteLength(body), content: Buffer.from(body) });
  return [
    { ...root, path: 'bin', type: 'dir', mode: 0o755 },
    { ...root, path: 'etc', type: 'dir', mode: 0o755 },
    { ...root, path: 'home', type: 'dir', mode: 0o755 },
    { ...root, path: 'home/alice', type: 'dir', mode: 0o700, uid: 1000, gid: 1000 },
    { ...root, path: 'bin/busybox', type: 'file', mode: 0o755, size: busybox.length, content: busybox },
    ...APPLETS.map((a): CpioEntry => ({ ...root, path: `bin/${a}`, type: 'symlink', mode: 0o777, linkname: 'busybox' })),
    text('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n'),
    text('etc/group', 'root:x:0:\nstaff:x:50:alice,bob\nalice:x:1000:\n'),
    text('bin/not-executable', '#!/bin/sh\necho never\n', 0o644),
    { ...root, path: 'bin/busybox-hardlink', type: 'hardlink', mode: 0o755, linkname: 'bin/busybox' },
  ];
}

interface BootResult {
  output: string;
  status: number;
  /** Wall time from QEMU's start to the first byte on the console. */
  firstOutputMs: number;
  totalMs: number;
}

/**
 * Boots the guest with `config` appended as the run configuration; `input` is typed
 * on the console once `inputAfter` has appeared in the output (the UART's FIFO is
 * reset when the guest's driver starts, so earlier bytes would be lost).
 */
async function boot(config: GuestRunConfig, input?: { after: string; text: string }, imageArchive = initramfs): Promise<BootResult> {
  const initrd = join(work, `initrd-${Math.random().toString(16).slice(2)}.cpio`);
  writeFileSync(initrd, Buffer.concat([readFileSync(imageArchive), encodeRunConfig(config)]));
  const cmdline = `console=ttyS0 reboot=k panic=-1 quiet ${GUEST_INIT_CMDLINE}`;
  const args = [
    '-machine', useKvm ? 'microvm,accel=kvm' : 'microvm,accel=tcg',
    '-cpu', useKvm ? 'host' : 'max',
    '-m', '256', '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio', '-no-reboot',
    '-device', 'isa-debug-exit,iobase=0xf4,iosize=4',
    '-kernel', kernel, '-initrd', initrd, '-append', cmdline,
  ];
  const started = performance.now();
  const qemu = spawn(QEMU, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let stderr = '';
  let firstOutputMs = -1;
  qemu.stdout.on('data', (d: Buffer) => {
    if (firstOutputMs < 0) firstOutputMs = performance.now() - started;
    output += d.toString('latin1');
    if (input && output.includes(input.after)) {
      qemu.stdin.write(input.text);
      input = undefined;
    }
  });
  qemu.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => qemu.kill('SIGKILL'), BOOT_TIMEOUT_MS);
  const code = await new Promise<number | null>((res) => qemu.on('close', (c) => res(c)));
  clearTimeout(timer);
  rmSync(initrd, { force: true });
  // isa-debug-exit makes QEMU exit with (value << 1) | 1, truncated to 8 bits.
  if (code === null || code % 2 === 0) {
    throw new Error(`QEMU ended without an exit status from the guest (code ${code}); stderr: ${stderr}\nconsole:\n${output}`);
  }
  return { output, status: (code - 1) / 2, firstOutputMs, totalMs: performance.now() - started };
}

/** Boots the guest with vmrun's own VMM (the addon) instead of QEMU. */
async function bootWithVmrun(config: GuestRunConfig): Promise<{ output: string; exitCode: number; reason: string }> {
  const initrd = join(work, `initrd-${Math.random().toString(16).slice(2)}.cpio`);
  writeFileSync(initrd, Buffer.concat([readFileSync(initramfs), encodeRunConfig(config)]));
  const machine = Machine.boot({ kernel, initrd, cmdline: `console=ttyS0 reboot=k panic=-1 quiet ${GUEST_INIT_CMDLINE}`, memory: '256M' });
  let output = '';
  machine.output.on('data', (d: Buffer) => (output += d.toString('latin1')));
  const timer = setTimeout(() => machine.stop(), BOOT_TIMEOUT_MS);
  const exit = await machine.wait().finally(() => clearTimeout(timer));
  rmSync(initrd, { force: true });
  return { output, exitCode: exit.exitCode, reason: exit.reason };
}

/** A run configuration the way `vmrun run` makes one: through resolveRunSpec. */
function runOf(command: string[], flags: Parameters<typeof resolveRunSpec>[1] = {}): GuestRunConfig {
  return resolveRunSpec({}, { ...flags, command });
}

// One kernel and image archive for both suites below (built only when they can run).
beforeAll(async () => {
  if (skipReason) return;
  work = mkdtempSync(join(tmpdir(), 'vmrun-guest-init-'));
  kernel = guestKernel();
  initramfs = await buildImageInitramfs(
    { imageDigest: `sha256:${'b'.repeat(64)}`, initBinaryPath: buildInit(), cacheDir: join(work, 'cache') },
    busyboxImage(),
  );
}, 40 * 60_000);
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(skipReason !== undefined)(`vmrun-init in a real guest (${useKvm ? 'KVM' : 'QEMU TCG'})`, () => {
  it('runs the command, shows its output and reports its exit status', async () => {
    const r = await boot(runOf(['sh', '-c', 'echo hi; exit 3']));
    console.log(`boot to first output ${(r.firstOutputMs / 1000).toFixed(2)} s, to exit ${(r.totalMs / 1000).toFixed(2)} s`);
    expect(r.output).toContain('hi\n');
    expect(r.status).toBe(3);
  });

  it('applies user, supplementary groups, workdir, env and hostname', async () => {
    const config = runOf(['sh', '-c', 'id; pwd; echo "FOO=$FOO HOME=$HOME"; hostname; cat /etc/hostname'], {
      user: 'alice',
      workdir: '/srv/app/data',
      env: ['FOO=bar baz'],
      hostname: 'guest-one',
    });
    const r = await boot(config);
    expect(r.status).toBe(0);
    expect(r.output).toContain('uid=1000(alice) gid=1000(alice) groups=50(staff)');
    expect(r.output).toContain('/srv/app/data\n');
    expect(r.output).toContain('FOO=bar baz HOME=/home/alice\n');
    expect(r.output).toMatch(/guest-one\nguest-one\n/);
  });

  it('unpacks hardlinks as one inode carrying the data', async () => {
    const r = await boot(runOf(['sh', '-c', 'stat -c "%i %h %s" /bin/busybox /bin/busybox-hardlink; /bin/busybox-hardlink echo linked-ok']));
    expect(r.status).toBe(0);
    const lines = r.output.split('\n').filter((l) => /^\d+ \d+ \d+$/.test(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(lines[1]);
    expect(lines[0]!.split(' ').slice(1)).toEqual(['2', String(readFileSync(BUSYBOX).length)]);
    expect(r.output).toContain('linked-ok');
  });

  it('reports docker statuses: 127 not found, 126 not executable, 125 unknown user, 128+n for a signal', async () => {
    const notFound = await boot(runOf(['no-such-program']));
    expect(notFound.status).toBe(127);
    expect(notFound.output).toContain('vmrun-init: exec "no-such-program": executable file not found in $PATH');

    const notExecutable = await boot(runOf(['/bin/not-executable']));
    expect(notExecutable.status).toBe(126);
    expect(notExecutable.output).toContain('vmrun-init: exec "/bin/not-executable": Permission denied');

    const unknownUser = await boot(runOf(['true'], { user: 'mallory' }));
    expect(unknownUser.status).toBe(125);
    expect(unknownUser.output).toContain('vmrun-init: unable to find user mallory');

    // QEMU's own exit code is 8 bits, so isa-debug-exit carries only the low 7 bits
    // of a status: 137 arrives as 9 (vmrun's VMM reads the full value from the port).
    const killed = await boot(runOf(['sh', '-c', 'kill -9 $$']));
    expect(killed.status).toBe((128 + 9) & 0x7f);
  });

  it('forwards SIGTERM to the workload and reaps orphaned zombies', async () => {
    const term = await boot(runOf(['sh', '-c', 'trap "echo got-term; exit 7" TERM; kill -TERM 1; sleep 30 & wait $!']));
    expect(term.output).toContain('got-term\n');
    expect(term.status).toBe(7);
    // An orphan that exits is re-parented to init, which must reap it.
    const orphans = await boot(runOf(['sh', '-c', '( sleep 0 & ); sleep 1; cat /proc/[0-9]*/stat | grep -c " Z " || true']));
    expect(orphans.status).toBe(0);
    expect(orphans.output).toMatch(/^0$/m);
  });

  it('gives a workload without -i an empty stdin, and one with -i the console input', async () => {
    const noInput = await boot(runOf(['sh', '-c', 'cat; echo after-cat']));
    expect(noInput.status).toBe(0);
    expect(noInput.output).toContain('after-cat\n');
    const typed = await boot(runOf(['sh', '-c', 'echo ready; read line; echo "got:$line"'], { interactive: true }), { after: 'ready', text: 'hello there\n' });
    expect(typed.status).toBe(0);
    expect(typed.output).toContain('got:hello there\n');
    expect(typed.output).not.toMatch(/hello there\r?\ngot:/); // the raw console does not echo
  });

  it('runs a pulled OCI image by its own Entrypoint, Cmd, Env, WorkingDir and User', async () => {
    const busybox = readFileSync(BUSYBOX);
    const layers = [
      await buildLayer([
        { name: 'bin/', type: 'directory' },
        { name: 'bin/busybox', content: busybox, mode: 0o755 },
        ...['sh', 'echo', 'id', 'pwd'].map((a) => ({ name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' })),
        { name: 'etc/', type: 'directory' },
        { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:4321:4321:app:/home/app:/bin/sh\n' },
      ]),
      await buildLayer([
        { name: 'app/', type: 'directory' },
        { name: 'app/entrypoint.sh', content: '#!/bin/sh\necho "entry $0 args: $*"; echo "GREETING=$GREETING"; pwd; id -u\nexit 42\n', mode: 0o755 },
      ], 'zstd'),
    ];
    const config = { Entrypoint: ['/app/entrypoint.sh'], Cmd: ['default-arg'], Env: ['GREETING=from the image'], WorkingDir: '/app/data', User: 'app' };
    const layout = join(work, 'layout');
    await writeOciLayout(layout, { v1: { layers, config } });
    const store = await ImageStore.open(join(work, 'home'));
    const image = await pullImage(store, `oci:${layout}:v1`);
    const archive = await buildImageInitramfs(
      { imageDigest: image.record.digest, initBinaryPath: buildInit(), cacheDir: join(work, 'cache') },
      cpioEntriesOfRootfs(streamRootfs(store, image)),
    );
    const r = await boot(resolveRunSpec(image.config.config, { command: ['given', 'args'] }, {}), undefined, archive);
    expect(r.output).toContain(`entry ${config.Entrypoint[0]} args: given args\n`);
    expect(r.output).toContain(`${config.Env[0]}\n`);
    expect(r.output).toContain(`${config.WorkingDir}\n4321\n`);
    expect(r.status).toBe(42);
  });

  it('gives -t workloads a controlling terminal of the requested size', async () => {
    const r = await boot(runOf(['sh', '-c', 'test -t 0 && echo is-a-tty; stty size; echo "TERM=$TERM"'], { tty: true, rows: 33, cols: 101 }));
    expect(r.status).toBe(0);
    expect(r.output).toContain('is-a-tty\r\n');
    expect(r.output).toContain('33 101\r\n');
    expect(r.output).toContain('TERM=xterm\r\n');
  });
});

describe.skipIf(vmmSkipReason !== undefined)('vmrun-init under vmrun\'s own VMM', () => {
  it('passes the workload\'s full exit status through port 0xf4', async () => {
    const r = await bootWithVmrun(runOf(['sh', '-c', 'echo hi; exit 3']));
    expect(r.output).toContain('hi\n');
    expect(r).toMatchObject({ reason: 'exit-code', exitCode: 3 });
    const killed = await bootWithVmrun(runOf(['sh', '-c', 'kill -9 $$']));
    expect(killed).toMatchObject({ reason: 'exit-code', exitCode: 128 + 9 });
  });
});
