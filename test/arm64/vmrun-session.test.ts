/**
 * A shell session on an arm64 host, saved and restored through the CLI: in one
 * aarch64 L1, `vmrun run -d` starts a busybox shell on vmrun's arm64 kernel and init
 * that draws a value at random into a variable and counts in the background (each
 * count with the guest's uptime, also appended to a file in tmpfs);
 * `vmrun snapshot save --stop` saves it mid-count, and after some time on disk
 * `vmrun snapshot restore -d` brings it back in a new process. The restored guest is
 * the same session: the variable holds the value drawn before the save, the counter
 * goes on with no gap or repeat, the tmpfs file kept its lines, and the guest's clock
 * steps across the restore like one count, not by the time on disk. `vmrun doctor`
 * says how the guest counter is restored on L1's KVM: KVM_ARM_SET_COUNTER_OFFSET from
 * Linux 6.4 on, KVM_REG_ARM_TIMER_CNT before. Run it on Debian's 6.1 L1 and, with
 * VMRUN_L1_KERNEL_PACKAGE=linux-image-6.12.<n>+deb12-arm64, on a 6.12 L1
 * (docs/testing.md). Run: npm run test:arm64 -- test/arm64/vmrun-session.test.ts
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HarnessRun } from '../harness/run-harness.js';
import { prepareArm64Guest, prepareArm64RunImage, REPO, runVmrunInArm64L1 } from './guest-fixture.js';
import { ScriptOutput, scriptStep } from './l1-script.js';

/** L1 start, eight CLI commands (Node's start, 20-35 s each in L1) and a boot and a restore under TCG. */
const RUN_TIMEOUT_S = 1800;
const VMRUN = join(REPO, 'bin/run.js');
/** Between the save and the restore, beyond the restore command's own start. */
const ON_DISK_S = 10;
/** Bound on each wait for the guest's output, in seconds of L1's time (polled once a second). */
const WAIT_S = 300;
/** The runtime directory (VM records, console logs) in L1's tmpfs. */
const RUNTIME_DIR = '/dev/shm/vmrun-runtime';

/**
 * The session: MARK is drawn at random in the guest (a new boot would draw another);
 * a background loop counts once a second with the guest's uptime and appends each
 * count to /tmp/counter (vmrun-init's tmpfs); the shell prints MARK and the file's
 * length every 2 s.
 */
const SESSION = [
  'MARK=$(cat /proc/sys/kernel/random/uuid)',
  '( i=0; while :; do i=$((i+1)); echo $i >> /tmp/counter; read up _ </proc/uptime; echo "count $i uptime $up"; sleep 1; done ) &',
  'while :; do sleep 2; echo "mark $MARK lines $(wc -l < /tmp/counter)"; done',
].join('\n');

/** The script's steps, in order. */
const STEPS = ['doctor', 'start', 'progress', 'save', 'restore', 'progress-restored', 'stop'];

let scratch: string;
let result: HarnessRun;
let script: ScriptOutput;

interface Count {
  n: number;
  uptime: number;
  /** Where the line starts in the text. */
  at: number;
}

/** Every "count N uptime U" line of a console text, in order. */
function counts(text: string): Count[] {
  return [...text.matchAll(/^count (\d+) uptime ([\d.]+)$/gm)].map((m) => ({ n: Number(m[1]), uptime: Number(m[2]), at: m.index }));
}

/** The "mark" lines: the session's variable and the counter file's length when printed. */
function marks(text: string): { mark: string; lines: number }[] {
  return [...text.matchAll(/^mark (\S+) lines (\d+)$/gm)].map((m) => ({ mark: m[1]!, lines: Number(m[2]) }));
}

/**
 * The text the script framed as `name`, exactly: the end marker follows a newline of
 * its own, since a console log can end mid-line (a line the save cut in two is whole
 * again when the logs before the save and after the restore are joined).
 */
function framed(name: string): string {
  const m = new RegExp(`^${name}-begin\\n([\\s\\S]*?)\\n${name}-end$`, 'm').exec(script.out);
  return m?.[1] ?? '';
}

beforeAll(async () => {
  const guest = await prepareArm64Guest({ addon: true });
  scratch = guest.scratch;
  const image = await prepareArm64RunImage(guest);
  const step = (label: string, command: string) => scriptStep(label, command, scratch);
  const vmrun = `VMRUN_RUNTIME_DIR=${RUNTIME_DIR} '${VMRUN}'`;
  // The console log of the VM named $1 (the registry's name link holds its id).
  const consoleLog = (name: string) => `${RUNTIME_DIR}/vms/$(readlink ${RUNTIME_DIR}/names/${name})/console.log`;
  // Polls the console log of VM $1 until it has a count of at least $2 and, after it, a mark line; bounded.
  const waitForProgress = [
    'wait_progress() {',
    `  i=0; while [ $i -lt ${WAIT_S} ]; do`,
    `    tr -d '\\r' < "${RUNTIME_DIR}/vms/$(readlink ${RUNTIME_DIR}/names/$1)/console.log" 2>/dev/null |`,
    '      awk -v min="$2" \'/^count [0-9]+ uptime/ && $2 >= min { seen = 1 } seen && /^mark / { found = 1 } END { exit !found }\' && return 0;',
    '    i=$((i+1)); sleep 1;',
    '  done; echo "wait_progress $1 $2: timed out" >&2; return 1;',
    '}',
  ].join('\n');
  const session = SESSION.replace(/'/g, `'\\''`);
  const commands = [
    waitForProgress,
    'echo "l1-kernel $(uname -r)"',
    step('doctor', `${vmrun} doctor`),
    step('start', `${vmrun} run -d -q --name session ${image} sh -c '${session}'`),
    step('progress', 'wait_progress session 4'),
    step('save', `${vmrun} snapshot save session -o s --stop`),
    `sleep ${ON_DISK_S}`,
    step('restore', `${vmrun} snapshot restore s -d --name restored`),
    // Three counts past the last one before the save (whatever it was) and a mark line after them.
    `last=$(tr -d '\\r' < "${consoleLog('session')}" | awk '/^count [0-9]+ uptime/ { n = $2 } END { print n + 0 }')`,
    step('progress-restored', 'wait_progress restored $((last + 3))'),
    step('stop', `${vmrun} stop restored`),
    `echo "before-save-begin"; tr -d '\\r' < "${consoleLog('session')}"; printf '\\nbefore-save-end\\n'`,
    `echo "after-restore-begin"; tr -d '\\r' < "${consoleLog('restored')}"; printf '\\nafter-restore-end\\n'`,
  ].join('\n');
  let out: string;
  ({ out, ...result } = await runVmrunInArm64L1(commands, RUN_TIMEOUT_S));
  script = new ScriptOutput(out, result.stderr);
  console.log(
    [
      ...result.stderr.split('\n').filter((l) => /^nested-kvm: /.test(l)),
      ...out.split('\n').filter((l) => /^l1-kernel /.test(l)),
      ...script.timings(STEPS),
    ].join('\n'),
  );
}, (RUN_TIMEOUT_S + 1800) * 1000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('a vmrun run -d shell session saved and restored on arm64 (aarch64 harness)', () => {
  it('every command succeeds', () => {
    expect(result.status, result.stderr).toBe(0);
    for (const step of STEPS) {
      expect(script.status(step)?.code, `${step}: ${script.stderrOf(step)}`).toBe(0);
    }
    expect(script.stdoutOf('save', 'progress').trim()).toBe('/dev/shm/vmrun-home/snapshots/s.vmsnap');
  });

  it('the restored guest is the same session: its variable, its tmpfs file, its counter with no gap or repeat', () => {
    const before = framed('before-save');
    const after = framed('after-restore');
    const lastBefore = counts(before).at(-1)?.n ?? 0;
    const mark = marks(before)[0]?.mark;
    console.log(`saved at count ${lastBefore}; the restored guest counted ${counts(after)[0]?.n}..${counts(after).at(-1)?.n}`);
    expect(lastBefore).toBeGreaterThanOrEqual(4);
    expect(mark).toMatch(/^[0-9a-f-]{36}$/);
    // The console before the save and after the restore is one session's stream.
    const all = counts(before + after).map((c) => c.n);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    expect(all.length).toBeGreaterThanOrEqual(lastBefore + 3);
    // The variable still holds the value drawn before the save; the tmpfs file kept its lines.
    const marksAfter = marks(after);
    expect(marksAfter.length).toBeGreaterThan(0);
    expect(marksAfter.map((m) => m.mark)).toEqual(marksAfter.map(() => mark));
    expect(marksAfter[0]!.lines).toBeGreaterThanOrEqual(lastBefore);
  });

  it("the guest's clock is continuous: never backwards, and across the restore it steps like a count, not by the time on disk", () => {
    const beforeText = framed('before-save');
    // Joined, as in the test above: a count line the save cut in two is whole again
    // (and was printed before the save: the first count after it starts after beforeText).
    const all = counts(beforeText + framed('after-restore'));
    for (let i = 1; i < all.length; i++) expect(all[i]!.uptime, `uptime at count ${all[i]!.n}`).toBeGreaterThan(all[i - 1]!.uptime);
    const before = all.filter((c) => c.at < beforeText.length);
    const steps = before.slice(1).map((c, i) => c.uptime - before[i]!.uptime);
    const firstAfter = all.findIndex((c) => c.at >= beforeText.length);
    expect(firstAfter, 'a count after the restore').toBeGreaterThan(0);
    const across = all[firstAfter]!.uptime - all[firstAfter - 1]!.uptime;
    // At least: from the end of the save command to the start of the restore command (L1's clock).
    const onDisk = script.status('restore')!.startS - script.status('save')!.endS;
    console.log(`clock: steps before the save up to ${Math.max(...steps).toFixed(2)} s; across the restore ${across.toFixed(2)} s; on disk at least ${onDisk.toFixed(1)} s`);
    expect(onDisk).toBeGreaterThanOrEqual(ON_DISK_S);
    expect(across).toBeLessThan(Math.max(...steps) + 5);
    expect(across).toBeLessThan(onDisk);
  });

  it("vmrun doctor names the guest counter's restore method of L1's KVM", () => {
    // KVM_ARM_SET_COUNTER_OFFSET from Linux 6.4 on, KVM_REG_ARM_TIMER_CNT before (VMRUN_L1_KERNEL_PACKAGE picks L1's kernel).
    const version = /^l1-kernel (\d+)\.(\d+)/m.exec(script.out);
    expect(version, 'the script printed L1\'s kernel release').not.toBeNull();
    const offsetApi = Number(version![1]) * 100 + Number(version![2]) >= 604;
    expect(script.stdoutOf('doctor')).toMatch(
      offsetApi
        ? /^Snapshots:\s+the guest counter is restored through KVM_ARM_SET_COUNTER_OFFSET$/m
        : /^Snapshots:\s+the guest counter is restored through KVM_REG_ARM_TIMER_CNT \(this KVM has no KVM_ARM_SET_COUNTER_OFFSET: Linux before 6\.4\)$/m,
    );
  });
});
