/**
 * `vmrun boot` on an arm64 host: the real CLI (bin/run.js) run by Node for arm64 in
 * the aarch64 harness's L1 (test/harness/arm64-userland.js), with the cross-built
 * addon (scripts/build-arm64-addon.sh), boots Debian's arm64 kernel (the one L1
 * itself boots) with the busybox initramfs of test/arm64/l2-init.sh. One L1 runs
 * every boot. Not in `npm test`: an L1 and three L2 boots under TCG take minutes
 * (docs/testing.md). Run: npm run test:arm64.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HARNESS, runHarness } from '../harness/run-harness.js';
import { prepareArm64Guest, REPO } from './guest-fixture.js';

/** L1 start, Node's start per command and three L2 boots under TCG on a shared 2-core host. */
const RUN_TIMEOUT_S = 1500;
const VMRUN = join(REPO, 'bin/run.js');

let scratch: string;
let kernel: string;
let initramfs: string;

beforeAll(async () => {
  ({ scratch, kernel, initramfs } = await prepareArm64Guest({ addon: true }));
}, 900_000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('vmrun boot on arm64 (aarch64 harness)', () => {
  it(
    "prints the guest's console and exits with the status it wrote to the exit device; --cpus 2 brings both CPUs online; a file that is no arm64 kernel is one error line and 125",
    async () => {
      // Not a kernel at all, and an x86 kernel's boot sector: both refused before any VM exists.
      const garbage = join(scratch, 'not-a-kernel');
      writeFileSync(garbage, 'this is not a kernel\n'.repeat(200));
      const boot = (label: string, args: string) =>
        // L1's uptime around each command: how long the CLI took, Node's start included.
        `read t0 _ </proc/uptime; '${VMRUN}' boot ${args} 2>${scratch}/${label}.err; s=$?; read t1 _ </proc/uptime; ` +
        `cat ${scratch}/${label}.err >&2; echo; echo "status-${label} $s seconds $t0 $t1"`;
      const guest = (cpus: number, extra: string) =>
        `'${kernel}' --initrd '${initramfs}' --cpus ${cpus} --memory 256M --stats --cmdline 'console=ttyS0 quiet panic=-1${extra}'`;
      const script = [
        boot('exit', guest(1, ' vmrun_test.exit=7')),
        boot('cpus', guest(2, '')),
        boot('bad', `'${garbage}' --memory 256M`),
      ].join('; ');
      const result = await runHarness(HARNESS, ['--arch', 'aarch64', '--timeout', String(RUN_TIMEOUT_S), '--', 'sh', '-c', script], {
        timeoutMs: (RUN_TIMEOUT_S + 60) * 1000,
      });
      const out = result.stdout.replace(/\r/g, '');
      const status = (label: string) => /^status-(\S+) (\d+) seconds ([\d.]+) ([\d.]+)$/m.exec(out.slice(out.indexOf(`status-${label} `)));
      const figures = [
        ...result.stderr.split('\n').filter((l) => /^nested-kvm: /.test(l)),
        ...['exit', 'cpus', 'bad'].map((l) => {
          const m = status(l);
          return m ? `vmrun boot (${l}): status ${m[2]}, ${(Number(m[4]) - Number(m[3])).toFixed(1)} s in L1, Node's start included` : `vmrun boot (${l}): no status`;
        }),
        ...out.split('\n').filter((l) => /vmrun-arm64-init: uptime/.test(l)),
        ...result.stderr.split('\n').filter((l) => /^vmrun: \{/.test(l)).map((l) => l.slice(0, 400)),
      ];
      console.log(figures.join('\n'));
      expect(result.status, result.stderr).toBe(0);
      const [first, rest] = out.split(/^status-exit .*$/m);
      const [second, third] = rest!.split(/^status-cpus .*$/m);

      // One vCPU: the console came through vmrun, and the guest's status is vmrun's.
      expect(first).toMatch(/vmrun-arm64-init: started\n/);
      expect(first).toMatch(/cpus online: 0\n/);
      expect(status('exit')?.[2]).toBe('7');
      // Two vCPUs: the secondary came up through PSCI CPU_ON; poweroff -f is PSCI SYSTEM_OFF, status 0.
      expect(second).toMatch(/vmrun-arm64-init: started\n/);
      expect(second).toMatch(/cpus online: 0-1\n/);
      expect(status('cpus')?.[2]).toBe('0');
      // --stats: the machine's exits, as on x86 (MMIO, no port I/O on arm64).
      const stats = result.stderr.split('\n').filter((l) => /^vmrun: \{/.test(l)).map((l) => JSON.parse(l.slice('vmrun: '.length)) as { exits: Record<string, number> });
      expect(stats).toHaveLength(2);
      for (const s of stats) {
        expect(s.exits.mmio).toBeGreaterThan(0);
        expect(s.exits['port-io']).toBeUndefined();
      }

      // A file that is no kernel: one line saying so, status 125, no guest output.
      expect(status('bad')?.[2]).toBe('125');
      expect(third).not.toMatch(/vmrun-arm64-init/);
      const errors = result.stderr.split('\n').filter((l) => l.includes(garbage));
      expect(errors, result.stderr).toHaveLength(1);
      expect(errors[0]).toMatch(/kernel .*not-a-kernel: neither an ELF file nor a bzImage .* nor an arm64 Image/);
    },
    (RUN_TIMEOUT_S + 120) * 1000,
  );
});
