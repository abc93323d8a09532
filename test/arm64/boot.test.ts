/**
 * vmrun's KVM arm64 backend with a real guest: Debian's arm64 kernel (the one the
 * aarch64 harness boots as L1) and a busybox initramfs boot under vmrun-arm64-boot
 * (test/arm64/boot_driver.cc) inside an aarch64 L1. Not in `npm test`: one L1 costs
 * minutes under TCG (docs/testing.md). Run: npm run test:arm64.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { l1Arch } from '../harness/l1-arch.js';
import { ensureL1Image } from '../harness/l1-image.js';
import { HARNESS, runHarness } from '../harness/run-harness.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const DRIVER = join(REPO, 'build/arm64/vmrun-arm64-boot');
const INIT = fileURLToPath(new URL('./l2-init.sh', import.meta.url));
/** L1 start plus two L2 boots under TCG on a shared 2-core host (measured 3-6 min). */
const RUN_TIMEOUT_S = 1200;

let scratch: string;
let kernel: string;
let initramfs: string;

/** Builds a newc cpio of `root` (files owned by root) into `output`. */
function cpio(root: string, names: string[], output: string) {
  const r = spawnSync('sh', ['-c', `cpio -o -H newc -R 0:0 --quiet > '${output}'`], { cwd: root, input: names.join('\n') + '\n' });
  if (r.status !== 0) throw new Error(`cpio failed: ${r.stderr}`);
}

beforeAll(() => {
  const image = ensureL1Image(() => {}, l1Arch('aarch64'));
  kernel = image.kernel;
  const build = spawnSync('sh', [join(REPO, 'scripts/build-arm64-driver.sh')], { encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`scripts/build-arm64-driver.sh failed:\n${build.stderr}`);
  // In the host's temp dir, which the aarch64 L1 sees at the same path.
  scratch = mkdtempSync(join(tmpdir(), 'vmrun-arm64-test-'));
  const root = join(scratch, 'root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  copyFileSync(image.busybox, join(root, 'bin/busybox'));
  copyFileSync(INIT, join(root, 'init'));
  chmodSync(join(root, 'init'), 0o755);
  initramfs = join(scratch, 'initramfs.cpio');
  cpio(root, ['bin', 'bin/busybox', 'init'], initramfs);
}, 600_000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('KVM arm64 backend (aarch64 harness)', () => {
  it(
    'boots Debian arm64 to /init on the vGICv3; the exit device and PSCI SYSTEM_OFF end it; --cpus 2 brings both CPUs online',
    async () => {
      const boot = (cpus: number, extra: string) =>
        `'${DRIVER}' --kernel '${kernel}' --initrd '${initramfs}' --cpus ${cpus} --memory 256 --timeout 900 ` +
        `--mark 'vmrun-arm64-init: started' --cmdline 'console=ttyS0 quiet panic=-1${extra}'`;
      const script = [
        `${boot(1, ' vmrun_test.exit=7')}; echo "status-1 $?"`,
        `${boot(2, '')}; echo "status-2 $?"`,
      ].join('; ');
      const run = await runHarness(HARNESS, ['--arch', 'aarch64', '--timeout', String(RUN_TIMEOUT_S), '--', 'sh', '-c', script], {
        timeoutMs: (RUN_TIMEOUT_S + 60) * 1000,
      });
      const figures = run.stderr.split('\n').filter((l) => /^(nested-kvm|arm64-boot): /.test(l));
      console.log(figures.join('\n'));
      expect(run.status, run.stderr).toBe(0);
      const [first, second] = run.stdout.split(/^status-1 .*$/m);
      // One vCPU: /init ran, saw CPU 0, and wrote 7 to the exit device.
      expect(first).toMatch(/vmrun-arm64-init: started\r?\n/);
      expect(first).toMatch(/cpus online: 0\r?\n/);
      expect(run.stdout).toMatch(/^status-1 7$/m);
      expect(run.stderr).toMatch(/arm64-boot: the guest exited with status 7 at/);
      // Two vCPUs: the secondary came up through PSCI CPU_ON; busybox's poweroff -f is PSCI SYSTEM_OFF.
      expect(second).toMatch(/vmrun-arm64-init: started\r?\n/);
      expect(second).toMatch(/cpus online: 0-1\r?\n/);
      expect(run.stdout).toMatch(/^status-2 0$/m);
      expect(run.stderr).toMatch(/arm64-boot: the guest powered off \(PSCI SYSTEM_OFF\) at/);
      expect(run.stderr.match(/arm64-boot: console showed "vmrun-arm64-init: started" at [\d.]+ ms/g)).toHaveLength(2);
    },
    (RUN_TIMEOUT_S + 120) * 1000,
  );
});
