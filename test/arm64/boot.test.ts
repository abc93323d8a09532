/**
 * vmrun's KVM arm64 backend with a real guest: Debian's arm64 kernel (the one the
 * aarch64 harness boots as L1) and a busybox initramfs boot under vmrun-arm64-boot
 * (test/arm64/boot_driver.cc) inside an aarch64 L1. Not in `npm test`: one L1 costs
 * minutes under TCG (docs/testing.md). Run: npm run test:arm64.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HARNESS, runHarness } from '../harness/run-harness.js';
import { DRIVER, prepareArm64Guest } from './guest-fixture.js';

/** L1 start plus two L2 boots under TCG on a shared 2-core host (measured 3-6 min). */
const RUN_TIMEOUT_S = 1200;

let scratch: string;
let kernel: string;
let initramfs: string;

beforeAll(async () => {
  ({ scratch, kernel, initramfs } = await prepareArm64Guest());
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
      const result = await runHarness(HARNESS, ['--arch', 'aarch64', '--timeout', String(RUN_TIMEOUT_S), '--', 'sh', '-c', script], {
        timeoutMs: (RUN_TIMEOUT_S + 60) * 1000,
      });
      const figures = result.stderr.split('\n').filter((l) => /^(nested-kvm|arm64-boot): /.test(l));
      console.log(figures.join('\n'));
      expect(result.status, result.stderr).toBe(0);
      const [first, second] = result.stdout.split(/^status-1 .*$/m);
      // One vCPU: /init ran, saw CPU 0, and wrote 7 to the exit device.
      expect(first).toMatch(/vmrun-arm64-init: started\r?\n/);
      expect(first).toMatch(/cpus online: 0\r?\n/);
      expect(result.stdout).toMatch(/^status-1 7$/m);
      expect(result.stderr).toMatch(/arm64-boot: the guest exited with status 7 at/);
      // Two vCPUs: the secondary came up through PSCI CPU_ON; busybox's poweroff -f is PSCI SYSTEM_OFF.
      expect(second).toMatch(/vmrun-arm64-init: started\r?\n/);
      expect(second).toMatch(/cpus online: 0-1\r?\n/);
      expect(result.stdout).toMatch(/^status-2 0$/m);
      expect(result.stderr).toMatch(/arm64-boot: the guest powered off \(PSCI SYSTEM_OFF\) at/);
      expect(result.stderr.match(/arm64-boot: console showed "vmrun-arm64-init: started" at [\d.]+ ms/g)).toHaveLength(2);
    },
    (RUN_TIMEOUT_S + 120) * 1000,
  );
});
