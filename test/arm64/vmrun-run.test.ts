/**
 * `vmrun run` on an arm64 host: the real CLI, run by Node for arm64 in the aarch64
 * harness's L1 with the cross-built addon, pulls an arm64 busybox image from an OCI
 * layout and runs it on vmrun's arm64 guest kernel (guest/kernel/build.sh --arch
 * aarch64) with the cross-built vmrun-init: the workload gets its env, workdir and
 * user over the guest agent (vsock), its stdout and stderr stay apart, and its exit
 * status is vmrun's. The first run of the image saves a template (an arm64 snapshot
 * through Machine); the second restores it; --cpus 2 brings both CPUs online.
 * Run: npm run test:arm64 (the kernel build takes ~9 min of 2 cores the first time).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HarnessRun } from '../harness/run-harness.js';
import { prepareArm64Guest, prepareArm64RunImage, REPO, runVmrunInArm64L1 } from './guest-fixture.js';
import { ScriptOutput, scriptStep } from './l1-script.js';

/** L1 start, Node's start per command (20-25 s in L1) and three L2 runs under TCG on a shared 2-core host. */
const RUN_TIMEOUT_S = 1800;
const VMRUN = join(REPO, 'bin/run.js');

let scratch: string;
let result: HarnessRun;
let script: ScriptOutput;
const status = (label: string) => script.status(label)?.code;
const stdoutOf = (label: string, after?: string) => script.stdoutOf(label, after);
const stderrOf = (label: string) => script.stderrOf(label);

beforeAll(async () => {
  const guest = await prepareArm64Guest({ addon: true });
  scratch = guest.scratch;
  const image = await prepareArm64RunImage(guest, [{ name: 'worker', uid: 1000, gid: 1000, home: '/home/worker' }]);
  const step = (label: string, command: string) => scriptStep(label, command, scratch);
  const commands = [
    step('first', `VMRUN_TRACE=1 '${VMRUN}' run -e 'FOO=bar baz' -w /work/dir -u worker ${image} ` +
      `sh -c 'echo "workload: FOO=$FOO in $(pwd) as $(id -un) $(id -u):$(id -g) home $HOME"; echo "to stderr" >&2; exit 7'`),
    step('second', `VMRUN_TRACE=1 '${VMRUN}' run ${image} sh -c 'echo "second: $(id -u) in $(pwd)"'`),
    step('cpus', `VMRUN_TRACE=1 '${VMRUN}' run --cpus 2 ${image} cat /sys/devices/system/cpu/online`),
  ].join('; ');
  let out: string;
  ({ out, ...result } = await runVmrunInArm64L1(commands, RUN_TIMEOUT_S));
  script = new ScriptOutput(out, result.stderr);
  console.log(result.stderr.split('\n').filter((l) => /^(nested-kvm: |vmrun: trace: )/.test(l)).join('\n'));
}, (RUN_TIMEOUT_S + 1800) * 1000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('vmrun run on arm64 (aarch64 harness)', () => {
  it("runs an arm64 image's workload with its env, workdir and user; stdout and stderr apart; its status is vmrun's", () => {
    expect(result.status, result.stderr).toBe(0);
    expect(stdoutOf('first')).toMatch(/^workload: FOO=bar baz in \/work\/dir as worker 1000:1000 home \/home\/worker$/m);
    expect(stdoutOf('first')).not.toMatch(/to stderr/);
    expect(stderrOf('first')).toMatch(/^to stderr$/m);
    expect(status('first')).toBe(7);
  });

  it('the first run of the image saves a template and the second restores it', () => {
    expect(stderrOf('first')).toMatch(/^vmrun: trace: start: booted; saved template [0-9a-f]{12}$/m);
    expect(stderrOf('second')).toMatch(/^vmrun: trace: start: restored template [0-9a-f]{12}$/m);
    expect(stdoutOf('second', 'first')).toMatch(/^second: 0 in \/$/m);
    expect(status('second')).toBe(0);
  });

  it('--cpus 2 brings both CPUs online', () => {
    expect(stdoutOf('cpus', 'second')).toMatch(/^0-1$/m);
    expect(status('cpus')).toBe(0);
  });
});
