/**
 * vmrun on an arm64 host: the real CLI (bin/run.js) run by Node for arm64 in the
 * aarch64 harness's L1 (test/harness/arm64-userland.js), with the cross-built addon
 * (scripts/build-arm64-addon.sh), boots Debian's arm64 kernel (the one L1 itself
 * boots) with the busybox initramfs of test/arm64/l2-init.sh, saves and restores a
 * running guest through vmrun's own snapshot file, and refuses a damaged one. One L1
 * runs every command (in beforeAll); the tests read what it printed. Not in `npm test`: an L1 and four L2
 * boots under TCG take minutes (docs/testing.md). Run: npm run test:arm64.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HarnessRun } from '../harness/run-harness.js';
import { prepareArm64Guest, REPO, runVmrunInArm64L1 } from './guest-fixture.js';
import { ScriptOutput, scriptStep } from './l1-script.js';

/** L1 start, Node's start per command (20-25 s in L1) and the L2 boots under TCG on a shared 2-core host. */
const RUN_TIMEOUT_S = 1800;
const VMRUN = join(REPO, 'bin/run.js');
const FLIP = join(REPO, 'test/arm64/flip-section-byte.mjs');
const DEVICES = join(REPO, 'test/arm64/boot-with-devices.mjs');
/** The snapshot guest's numbered lines (l2-init.sh, about 0.5 s apart): still counting when the save lands. */
const COUNT = 60;
/** Between the save and the restore, beyond the restore command's own start. */
const ON_DISK_S = 10;

let scratch: string;
let result: HarnessRun;
let script: ScriptOutput;
let out: string;
const status = (label: string) => script.status(label);
const consoleOf = (label: string, after?: string) => script.stdoutOf(label, after);

interface CountLine {
  n: number;
  uptime: number;
  online: string;
}

function countLines(text: string): CountLine[] {
  return [...text.matchAll(/vmrun-arm64-count (\d+) uptime ([\d.]+) online (\S+) cpu1-uptime \S+ end/g)].map((m) => ({
    n: Number(m[1]),
    uptime: Number(m[2]),
    online: m[3]!,
  }));
}

beforeAll(async () => {
  let kernel: string;
  let initramfs: string;
  ({ scratch, kernel, initramfs } = await prepareArm64Guest({ addon: true }));
  const garbage = join(scratch, 'not-a-kernel');
  writeFileSync(garbage, 'this is not a kernel\n'.repeat(200));
  const disk = join(scratch, 'disk.raw');
  writeFileSync(disk, Buffer.alloc(1 << 20));
  const step = (label: string, command: string) => scriptStep(label, command, scratch);
  const guest = (cpus: number, extra: string) =>
    `'${kernel}' --initrd '${initramfs}' --cpus ${cpus} --memory 256M --cmdline 'console=ttyS0 quiet panic=-1${extra}'`;
  const snapshot = '/dev/shm/vmrun-arm64.vmsnap';
  const commands = [
    step('exit', `'${VMRUN}' boot ${guest(1, ' vmrun_test.exit=7')} --stats`),
    step('cpus', `'${VMRUN}' boot ${guest(2, '')} --stats`),
    step('bad', `'${VMRUN}' boot '${garbage}' --memory 256M`),
    // Through the library: a vsock device (slot 0) and a disk (slot 1), found by the guest's virtio-mmio driver.
    step('devices', `node '${DEVICES}' '${kernel}' '${initramfs}' '${disk}' "$XDG_RUNTIME_DIR/vmrun-arm64-vsock" 'console=ttyS0 quiet panic=-1 vmrun_test.virtio=1'`),
    // A 2-vCPU guest counting in the background, saved mid-count (and stopped), then
    // restored in a new process, which prints the console from the save on.
    step('detach', `'${VMRUN}' boot -d --name arm64-counter ${guest(2, ` vmrun_test.count=${COUNT}`)}`),
    step('save', `'${VMRUN}' snapshot save arm64-counter -o ${snapshot} --stop`),
    `'${VMRUN}' logs arm64-counter >${scratch}/before-save.txt`,
    `sleep ${ON_DISK_S}`,
    step('restore', `'${VMRUN}' snapshot restore ${snapshot}`),
    // The same file with one byte of its VM state (the GIC) flipped: refused before any VM exists.
    `cp ${snapshot} ${snapshot}.damaged && node '${FLIP}' ${snapshot}.damaged`,
    step('damaged', `'${VMRUN}' snapshot restore ${snapshot}.damaged`),
    `echo "before-save-begin"; cat ${scratch}/before-save.txt; echo "before-save-end"`,
  ].join('; ');
  ({ out, ...result } = await runVmrunInArm64L1(commands, RUN_TIMEOUT_S));
  script = new ScriptOutput(out, result.stderr);
  console.log(
    [
      ...result.stderr.split('\n').filter((l) => /^(nested-kvm: |flipped byte )/.test(l)),
      ...script.timings(['exit', 'cpus', 'bad', 'devices', 'detach', 'save', 'restore', 'damaged']),
      ...out.split('\n').filter((l) => /vmrun-arm64-init: uptime/.test(l)),
      ...result.stderr.split('\n').filter((l) => /^vmrun: \{/.test(l)).map((l) => l.slice(0, 400)),
    ].join('\n'),
  );
}, (RUN_TIMEOUT_S + 900) * 1000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('vmrun on arm64 (aarch64 harness)', () => {
  it("boot prints the guest's console and exits with the status it wrote to the exit device; --cpus 2 brings both CPUs online; a file that is no arm64 kernel is one error line and 125", () => {
    expect(result.status, result.stderr).toBe(0);
    // One vCPU: the console came through vmrun, and the guest's status is vmrun's.
    const first = consoleOf('exit');
    expect(first).toMatch(/vmrun-arm64-init: started\n/);
    expect(first).toMatch(/cpus online: 0\n/);
    expect(status('exit')?.code).toBe(7);
    // Two vCPUs: the secondary came up through PSCI CPU_ON; poweroff -f is PSCI SYSTEM_OFF, status 0.
    const second = consoleOf('cpus', 'exit');
    expect(second).toMatch(/vmrun-arm64-init: started\n/);
    expect(second).toMatch(/cpus online: 0-1\n/);
    expect(status('cpus')?.code).toBe(0);
    // --stats: the machine's exits, as on x86 (MMIO, no port I/O on arm64).
    const stats = result.stderr.split('\n').filter((l) => /^vmrun: \{/.test(l)).map((l) => JSON.parse(l.slice('vmrun: '.length)) as { exits: Record<string, number> });
    expect(stats).toHaveLength(2);
    for (const s of stats) {
      expect(s.exits.mmio).toBeGreaterThan(0);
      expect(s.exits['port-io']).toBeUndefined();
    }
    // A file that is no kernel: one line saying so, status 125, no guest output.
    expect(status('bad')?.code).toBe(125);
    expect(consoleOf('bad', 'cpus')).not.toMatch(/vmrun-arm64-init/);
    const errors = result.stderr.split('\n').filter((l) => l.includes('not-a-kernel'));
    expect(errors, result.stderr).toHaveLength(1);
    expect(errors[0]).toMatch(/kernel \S+not-a-kernel: neither an ELF file nor a bzImage .* nor an arm64 Image/);
  });

  it('virtio-mmio devices are announced in the device tree: the guest finds a vsock device and a disk in their slots', () => {
    expect(status('devices')?.code, result.stderr).toBe(0);
    const found = /vmrun-arm64-init: virtio devices: (.*)\n/.exec(consoleOf('devices', 'bad'))?.[1]?.split(' ');
    expect(found?.sort()).toEqual(['0x0002', '0x0013']);
  });

  it('a 2-vCPU guest saved mid-count with snapshot save --stop and restored in a new process counts on with no gap or repeat, its clock continuous, both CPUs online', () => {
    expect(status('detach')?.code, result.stderr).toBe(0);
    expect(status('save')?.code, result.stderr).toBe(0);
    expect(status('restore')?.code, result.stderr).toBe(0);
    // The console as `vmrun logs` kept it up to the save, and as the restored process printed it
    // (a line the save cut in two is whole again when the two are joined).
    const beforeText = out.slice(out.indexOf('before-save-begin\n') + 'before-save-begin\n'.length, out.indexOf('before-save-end'));
    const saveLine = /^status-save .*\n/m.exec(out)!;
    const restoredText = out.slice(saveLine.index + saveLine[0].length, out.search(/^status-restore /m));
    const before = countLines(beforeText);
    const restored = countLines(restoredText);
    const lastBefore = before[before.length - 1]?.n ?? 0;
    const all = countLines(beforeText + restoredText);
    const after = all.filter((l) => l.n > lastBefore);
    console.log(
      `snapshot: saved after count ${lastBefore}; restored counts ${after[0]?.n}..${after[after.length - 1]?.n}; ` +
        `uptime ${before[before.length - 1]?.uptime} before the save, ${after[0]?.uptime} at the first line after the restore`,
    );
    // Saved mid-count, then every number once: the console before the save and after the restore together count 1..COUNT.
    expect(lastBefore).toBeGreaterThan(0);
    expect(lastBefore).toBeLessThan(COUNT);
    expect(all.map((l) => l.n)).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));
    // The restore printed only what came after the save.
    expect(restored[0]!.n).toBeGreaterThan(lastBefore);
    // The clock: never backwards; across the restore it steps like a line or two of counting, not by
    // the time on disk (the restore command's Node start alone is 20 s in L1, plus ON_DISK_S).
    for (let i = 1; i < all.length; i++) expect(all[i]!.uptime, `uptime of line ${all[i]!.n}`).toBeGreaterThan(all[i - 1]!.uptime);
    const steps = before.slice(1).map((l, i) => l.uptime - before[i]!.uptime);
    const across = after[0]!.uptime - before[before.length - 1]!.uptime;
    // At least: from the end of the save command to the start of the restore command (L1's clock).
    const onDisk = status('restore')!.startS - status('save')!.endS;
    console.log(`clock: steps before the save up to ${Math.max(...steps).toFixed(2)} s; across the restore ${across.toFixed(2)} s; on disk at least ${onDisk.toFixed(1)} s`);
    expect(onDisk).toBeGreaterThanOrEqual(ON_DISK_S);
    expect(across).toBeLessThan(Math.max(...steps) + 5);
    expect(across).toBeLessThan(onDisk);
    // Both CPUs online after the restore.
    for (const l of after) expect(l.online).toBe('0-1');
  });

  it("a snapshot whose VM state (the GIC) has a flipped byte is refused in one line, status 125", () => {
    expect(result.stderr).toMatch(/^flipped byte \d+ of the VM_STATE section/m);
    expect(status('damaged')?.code).toBe(125);
    const refusal = result.stderr.split('\n').filter((l) => l.includes('.damaged'));
    expect(refusal, result.stderr).toHaveLength(1);
    expect(refusal[0]).toMatch(/snapshot \S+\.damaged: .*VM_STATE.*(CRC|checksum)/i);
    // Nothing ran: no guest output between the restore's status and this one.
    expect(consoleOf('damaged', 'restore')).not.toMatch(/vmrun-arm64-count/);
  });
});
