/**
 * vmrun's own arm64 guest: the kernel guest/kernel/build.sh --arch aarch64 builds and
 * the cross-built vmrun-init, booted by the KVM arm64 backend (vmrun-arm64-boot) in
 * the aarch64 harness with an initramfs made the way `vmrun run` makes it (the image
 * archive, then the run configuration). The workload's env, workdir and user are
 * honoured, its exit status reaches the VMM through the exit device vmrun-init finds
 * in the device tree, and with 2 vCPUs both CPUs come online.
 * Run: npm run test:arm64 (builds the arm64 kernel the first time, ~9 min on 2 cores).
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CpioEntry } from '../../src/initramfs/cpio-newc.js';
import { buildImageInitramfs, GUEST_INIT_CMDLINE } from '../../src/initramfs/image-initramfs.js';
import { encodeRunConfig, type GuestRunConfig } from '../../src/initramfs/run-config.js';
import { findGuestInit } from '../../src/run/guest-kernel.js';
import { HARNESS, runHarness } from '../harness/run-harness.js';
import { DRIVER, prepareArm64Guest, REPO } from './guest-fixture.js';

/** L1 start plus two L2 boots under TCG on a shared 2-core host. */
const RUN_TIMEOUT_S = 1200;
const run = promisify(execFile);

let scratch: string;
let kernel: string;
let initrds: { workload: string; cpus: string };

/** A workload's run configuration, defaults as `vmrun run` resolves them. */
function runConfig(c: Partial<GuestRunConfig> & { argv: string[] }): Uint8Array {
  return encodeRunConfig({ env: ['PATH=/bin'], workdir: '/', user: '', hostname: 'arm64-guest', tty: false, ...c });
}

beforeAll(async () => {
  const guest = await prepareArm64Guest();
  scratch = guest.scratch;
  const built = await run(join(REPO, 'guest/kernel/build.sh'), ['--arch', 'aarch64'], { maxBuffer: 1 << 24 });
  const image = /^Image: (.+)$/m.exec(built.stdout)?.[1];
  if (!image) throw new Error(`guest/kernel/build.sh --arch aarch64 printed no Image:\n${built.stdout}`);
  kernel = image;
  await run('make', ['-s', '-C', join(REPO, 'guest/init'), 'aarch64']);
  const init = findGuestInit(REPO, {}, 'aarch64');
  // The image: Debian's static arm64 busybox and the applets the workloads call.
  const busybox = readFileSync(join(guest.scratch, 'root/bin/busybox'));
  const root = { uid: 0, gid: 0, mtime: 0, size: 0 };
  const entries: CpioEntry[] = [
    { ...root, path: 'bin', type: 'dir', mode: 0o755 },
    { ...root, path: 'bin/busybox', type: 'file', mode: 0o755, size: busybox.length, content: busybox },
    ...['sh', 'echo', 'cat', 'id', 'pwd'].map((a): CpioEntry => ({ ...root, path: `bin/${a}`, type: 'symlink', mode: 0o777, linkname: 'busybox' })),
  ];
  const archive = readFileSync(await buildImageInitramfs({ imageDigest: 'sha256:' + 'a'.repeat(64), initBinaryPath: init, cacheDir: join(scratch, 'cache') }, entries));
  const initrd = (name: string, config: Uint8Array) => {
    const path = join(scratch, `${name}.cpio`);
    writeFileSync(path, Buffer.concat([archive, config]));
    return path;
  };
  initrds = {
    workload: initrd('workload', runConfig({
      argv: ['sh', '-c', 'echo "workload: FOO=$FOO in $(pwd) as $(id -u):$(id -g)"; exit 7'],
      env: ['PATH=/bin', 'FOO=bar baz'],
      workdir: '/work/dir',
      user: '1000:1000',
    })),
    cpus: initrd('cpus', runConfig({ argv: ['sh', '-c', 'echo "online: $(cat /sys/devices/system/cpu/online)"'] })),
  };
}, 30 * 60_000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("vmrun's arm64 guest kernel and vmrun-init (aarch64 harness)", () => {
  it(
    'runs the workload with its env, workdir and user, ends with its status through the exit device; 2 vCPUs come online',
    async () => {
      const cmdline = `console=ttyS0 quiet panic=-1 ${GUEST_INIT_CMDLINE}`;
      const boot = (cpus: number, initrd: string) =>
        `'${DRIVER}' --kernel '${kernel}' --initrd '${initrd}' --cpus ${cpus} --memory 256 --timeout 900 --cmdline '${cmdline}'`;
      const script = [`${boot(1, initrds.workload)}; echo "status-1 $?"`, `${boot(2, initrds.cpus)}; echo "status-2 $?"`].join('; ');
      const result = await runHarness(HARNESS, ['--arch', 'aarch64', '--timeout', String(RUN_TIMEOUT_S), '--', 'sh', '-c', script], {
        timeoutMs: (RUN_TIMEOUT_S + 60) * 1000,
      });
      console.log(result.stderr.split('\n').filter((l) => /^(nested-kvm|arm64-boot): /.test(l)).join('\n'));
      expect(result.status, result.stderr).toBe(0);
      const [first, second] = result.stdout.split(/^status-1 .*$/m);
      expect(first).toMatch(/^workload: FOO=bar baz in \/work\/dir as 1000:1000\r?$/m);
      // 7 is the workload's own status: vmrun-init found the exit device in the device tree.
      expect(result.stdout).toMatch(/^status-1 7$/m);
      expect(result.stderr).toMatch(/arm64-boot: the guest exited with status 7 at/);
      expect(second).toMatch(/^online: 0-1\r?$/m);
      expect(result.stdout).toMatch(/^status-2 0$/m);
    },
    (RUN_TIMEOUT_S + 120) * 1000,
  );
});
