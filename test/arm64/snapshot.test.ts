/**
 * arm64 snapshots on vmrun's KVM arm64 backend, in the aarch64 harness. On Debian's
 * 6.1 L1 the guest counter is restored through KVM_REG_ARM_TIMER_CNT; with
 * VMRUN_L1_KERNEL_PACKAGE naming bookworm-backports' 6.12 kernel, through
 * KVM_ARM_SET_COUNTER_OFFSET (docs/testing.md). A 2-vCPU Debian arm64
 * guest whose /init prints a numbered line with its monotonic clock about every 0.5 s
 * (l2-init.sh) is saved by vmrun-arm64-boot after line SAVE_AFTER, and the driver
 * stops; the snapshot sits on disk for ON_DISK_S; a new driver process restores it and
 * the guest counts on to COUNT and powers off. Then a byte inside the snapshot's GIC
 * section is flipped and a restore of it must be refused in one line before any VM
 * exists. Run: npm run test:arm64.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HARNESS, runHarness } from '../harness/run-harness.js';
import { DRIVER, prepareArm64Guest } from './guest-fixture.js';

/** L1 start plus one L2 boot, a save, a restore and a refused restore (measured 1-3 min). */
const RUN_TIMEOUT_S = 1200;
const COUNT = 14;
const SAVE_AFTER = 4;
/** How long the snapshot waits between the save and the restore: longer than any honest step of the clock. */
const ON_DISK_S = 6;
/**
 * The guest's clock must be continuous across the restore: the counter is restored
 * as it was at the save, so the time on disk does not exist for the guest. The step
 * between the last line before the save and the first after it may then be at most
 * the largest step of the uninterrupted run, plus the time the restored guest ran
 * before its first output (its first moments are slow: every page it touches is a
 * stage-2 fault of L1's emulated EL2, and the clock rightly runs meanwhile), plus
 * this margin; and it must stay below the time on disk, which a clock that caught up
 * with the wall clock would have added.
 */
const CLOCK_MARGIN_S = 0.5;

let scratch: string;
let kernel: string;
let initramfs: string;

beforeAll(async () => {
  ({ scratch, kernel, initramfs } = await prepareArm64Guest());
}, 600_000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface CountLine {
  n: number;
  uptime: number;
  online: string;
  cpu1Uptime: string;
}

function countLines(text: string): CountLine[] {
  return [...text.matchAll(/vmrun-arm64-count (\d+) uptime ([\d.]+) online (\S+) cpu1-uptime (\S+) end/g)].map((m) => ({
    n: Number(m[1]),
    uptime: Number(m[2]),
    online: m[3],
    cpu1Uptime: m[4],
  }));
}

describe('arm64 snapshots on KVM arm64 (aarch64 harness; TIMER_CNT on a 6.1 L1, the counter-offset API on 6.4+)', () => {
  it(
    'a 2-vCPU guest saved mid-count and restored in a new process counts on with no gap or repeat, its clock continuous and both CPUs online; a flipped byte in the GIC section is refused',
    async () => {
      // L1's /dev/shm: a tmpfs, so the RAM file does not cross 9p.
      const snap = '/dev/shm/vmrun-arm64-snapshot-test';
      const err = '/dev/shm/vmrun-arm64-save.err';
      const script = [
        `'${DRIVER}' --kernel '${kernel}' --initrd '${initramfs}' --cpus 2 --memory 256 --timeout 900 ` +
          `--cmdline 'console=ttyS0 quiet panic=-1 vmrun_test.count=${COUNT}' ` +
          `--save-after-line 'vmrun-arm64-count ${SAVE_AFTER} ' --snapshot ${snap} 2>${err}; s=$?; cat ${err} >&2; echo; echo "status-save $s"`,
        `sleep ${ON_DISK_S}`,
        `'${DRIVER}' --restore ${snap} --timeout 120; s=$?; echo; echo "status-restore $s"`,
        // One byte in the middle of the GIC section, XOR 0x10.
        `line=$(grep 'snapshot section GIC state' ${err})`,
        `off=$(echo "$line" | sed -n 's/.* at offset \\([0-9]*\\), \\([0-9]*\\) bytes.*/\\1/p')`,
        `len=$(echo "$line" | sed -n 's/.* at offset \\([0-9]*\\), \\([0-9]*\\) bytes.*/\\2/p')`,
        `pos=$((off + len / 2))`,
        `set -- $(dd if=${snap} bs=1 skip=$pos count=1 2>/dev/null | od -An -tu1)`,
        `printf "$(printf '\\\\%03o' $(($1 ^ 16)))" | dd of=${snap} bs=1 seek=$pos count=1 conv=notrunc 2>/dev/null`,
        `echo "flipped byte $pos of the GIC section [$off, $((off + len))): $1 -> $(($1 ^ 16))" >&2`,
        `'${DRIVER}' --restore ${snap} --timeout 60; echo "status-corrupt $?"`,
        `rm -f ${snap} ${snap}.ram ${err}`,
      ].join('; ');
      const result = await runHarness(HARNESS, ['--arch', 'aarch64', '--timeout', String(RUN_TIMEOUT_S), '--', 'sh', '-c', script], {
        timeoutMs: (RUN_TIMEOUT_S + 60) * 1000,
      });
      const out = result.stdout.replace(/\r/g, '');
      const figures = result.stderr.split('\n').filter((l) => /^(nested-kvm|arm64-boot): /.test(l) || /^flipped byte/.test(l));
      expect(result.status, result.stderr).toBe(0);
      const saved = /\nstatus-save (\d+)\n/.exec(out);
      const restored = /\nstatus-restore (\d+)\n/.exec(out);
      expect(saved?.[1], result.stderr).toBe('0');
      expect(restored?.[1], result.stderr).toBe('0');
      // The console bytes of the two processes, exactly (the echo before each status adds the "\n").
      const before = out.slice(0, saved!.index);
      const after = out.slice(saved!.index + saved![0].length, restored!.index);
      const beforeLines = countLines(before);
      const all = countLines(before + after);
      const lastBefore = beforeLines[beforeLines.length - 1]?.n ?? 0;
      const afterLines = all.filter((l) => l.n > lastBefore);
      const around = all.filter((l) => Math.abs(l.n - lastBefore) <= 2 || l.n === lastBefore + 3);
      console.log(
        [
          ...figures,
          ...around.map((l) => `${l.n <= lastBefore ? 'before save' : 'restored   '}: count ${l.n} uptime ${l.uptime} online ${l.online} cpu1-uptime ${l.cpu1Uptime}`),
        ].join('\n'),
      );

      // Saved after line SAVE_AFTER (a line or so more may print before the pause lands).
      expect(result.stderr).toMatch(/arm64-boot: saved to \S+ after the console showed/);
      expect(beforeLines.length).toBeGreaterThanOrEqual(SAVE_AFTER);
      expect(beforeLines.length).toBeLessThanOrEqual(SAVE_AFTER + 2);
      // No gap, no repeat: the two runs' console output together counts 1..COUNT once each.
      expect(all.map((l) => l.n)).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));
      expect(afterLines.length).toBeGreaterThanOrEqual(COUNT - SAVE_AFTER - 2);
      expect(result.stderr).toMatch(/arm64-boot: restored in [\d.]+ ms/);
      // The guest counter's restore method follows L1's KVM: KVM_ARM_SET_COUNTER_OFFSET
      // from Linux 6.4 on, KVM_REG_ARM_TIMER_CNT before (VMRUN_L1_KERNEL_PACKAGE picks L1's kernel).
      const l1 = /nested-kvm: L1 image .*\(linux-image-(\d+)\.(\d+)/.exec(result.stderr);
      expect(l1, 'the harness names L1\'s kernel package').not.toBeNull();
      const offsetApi = Number(l1![1]) * 100 + Number(l1![2]) >= 604;
      expect(result.stderr).toMatch(
        new RegExp(`arm64-boot: restored in .*; guest counter set through ${offsetApi ? 'KVM_ARM_SET_COUNTER_OFFSET' : 'KVM_REG_ARM_TIMER_CNT'}\n`),
      );
      expect(result.stderr).toMatch(/arm64-boot: the guest powered off \(PSCI SYSTEM_OFF\)/);

      // The clock: never backwards, and no jump for the time on disk.
      for (let i = 1; i < all.length; i++) expect(all[i].uptime, `uptime of line ${all[i].n}`).toBeGreaterThan(all[i - 1].uptime);
      const steps = beforeLines.slice(1).map((l, i) => l.uptime - beforeLines[i].uptime);
      const acrossRestore = afterLines[0].uptime - beforeLines[beforeLines.length - 1].uptime;
      const onDisk = Number(/the snapshot sat on disk ([\d.]+) s/.exec(result.stderr)?.[1]);
      const firstOutputS = Number(/first console output ([\d.]+) ms after the vCPUs started/.exec(result.stderr)?.[1]) / 1000;
      console.log(
        `clock: steps before the save ${steps.map((s) => s.toFixed(2)).join(' ')} s; across the restore ${acrossRestore.toFixed(2)} s; on disk ${onDisk.toFixed(2)} s; ` +
          `the restored guest's first output ${firstOutputS.toFixed(2)} s after its vCPUs started`,
      );
      expect(onDisk).toBeGreaterThanOrEqual(ON_DISK_S);
      expect(acrossRestore).toBeGreaterThan(0);
      expect(acrossRestore).toBeLessThanOrEqual(Math.max(...steps) + firstOutputS + CLOCK_MARGIN_S);
      expect(acrossRestore).toBeLessThan(onDisk);

      // Both CPUs online after the restore, and CPU 1 runs: a process pinned to it printed the clock.
      for (const l of afterLines) {
        expect(l.online).toBe('0-1');
        expect(Number(l.cpu1Uptime)).toBeGreaterThan(0);
      }

      // The flipped byte: refused in one line, before any VM was made.
      expect(out).toMatch(/^status-corrupt 125$/m);
      const refusal = result.stderr.split('\n').filter((l) => /fails its CRC-32C check/.test(l));
      expect(refusal).toHaveLength(1);
      expect(refusal[0]).toMatch(/^arm64-boot: snapshot \S+: the GIC state \(VM\) section fails its CRC-32C check: the file is damaged \(nothing was restored\)$/);
      expect(result.stderr.match(/arm64-boot: restored in/g)).toHaveLength(1);
    },
    (RUN_TIMEOUT_S + 120) * 1000,
  );
});
