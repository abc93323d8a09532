#!/usr/bin/env node
// Real-guest benchmarks of `vmrun run` and `vmrun snapshot restore`, each against
// Debian's QEMU booting the same guest with KVM in the same run (issues 5 and 6):
//  1. `vmrun run IMAGE sh -c 'echo ...'` (whole CLI process) to the guest's first
//     output, vs qemu-system-x86_64 -machine microvm with the same kernel (bzImage),
//     the same initramfs (the cached image archive + the run archive, concatenated)
//     and the same command line.
//  2. `vmrun snapshot restore` (whole CLI process) of a running busybox shell loop to
//     its first output, vs a fresh QEMU with -loadvm of the same guest saved by savevm.
// Prints JSON lines (bench/stats.js); ratio = vmrun / QEMU (below 1: vmrun is faster);
// nodeStartMs = `node -e 'console.log(1)'` to its output, the floor of any vmrun CLI figure.
// Needs a KVM that runs guests natively: on a host without one this script re-runs
// itself inside test/harness/nested-kvm (it says so), e.g. `node bench/run.e2e.js`;
// or directly `test/harness/nested-kvm -- node bench/run.e2e.js`. Runs per figure:
// VMRUN_BENCH_RUNS (default 5). Needs `npm run build` (dist/, the addon).
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, guestKernels, inNestedL1, privateVmrunState, runWhereGuestsRun } from './e2e/environment.js';
import { importTsBundle } from './e2e/bundle-ts.js';
import { timeFirstOutput } from './e2e/first-output.js';
import { interleaved as interleavedSamples } from './e2e/samples.js';
import { createScratchQcow2, guestStatusOf, microvmArgv, qemuUnavailableReason, saveQemuSnapshot } from './e2e/qemu.js';
import { median, report, round } from './stats.js';

runWhereGuestsRun(fileURLToPath(import.meta.url));

const RUNS = Number(process.env.VMRUN_BENCH_RUNS ?? 5);
/** One guest start in L1 takes 5-30 s (process start-up under TCG dominates). */
const START_TIMEOUT_MS = 180_000;
const where = inNestedL1() ? 'nested-KVM L1 (QEMU TCG host, KVM on emulated SVM)' : 'this host (KVM with hardware virtualization)';

const qemuMissing = qemuUnavailableReason();
if (qemuMissing) throw new Error(`bench/run.e2e.js needs QEMU as its anchor: ${qemuMissing}`);
const kernels = guestKernels();
const state = privateVmrunState();
const { prepareRun } = await import(join(ROOT, 'dist', 'run', 'run-image.js'));
const { writeBusyboxLayout } = await importTsBundle(join(ROOT, 'test', 'e2e', 'helpers', 'busybox-image.ts'));

const layout = join(state.root, 'layout');
await writeBusyboxLayout(layout, 'v1');
const image = `oci:${layout}:v1`;
const vmrunArgv = (...args) => [process.execPath, join(ROOT, 'bin', 'run.js'), ...args];

/**
 * The initramfs QEMU boots for `command`: exactly what `vmrun run` would give its
 * guest (the cached image archive, then the per-run archive), and the command line.
 */
async function qemuBootFiles(command, name) {
  const run = await prepareRun({ image, command, kernel: kernels.bzImage });
  const initrd = join(state.root, `${name}.cpio`);
  try {
    writeFileSync(initrd, Buffer.concat(run.boot.initrd.map((f) => readFileSync(f))));
  } finally {
    run.cleanup();
  }
  return { kernel: kernels.bzImage, initrd, cmdline: run.boot.cmdline };
}

/** Runs `samples` once untimed, then RUNS times interleaved; returns each one's first-output times. */
const interleaved = (samples) => interleavedSamples(samples, { runs: RUNS, label: 'bench/run.e2e.js' });

try {
  // 1. Boot to first output.
  const marker = 'first-output';
  const bootCommand = ['sh', '-c', `echo ${marker}`];
  const vmrunRun = (kernel, ...flags) => async () => {
    const r = await timeFirstOutput(vmrunArgv('run', '-q', ...flags, '--kernel', kernel, image, ...bootCommand), { env: state.env, timeoutMs: START_TIMEOUT_MS });
    if (r.status !== 0 || r.stdout !== `${marker}\n`) throw new Error(`vmrun run: status ${r.status}, stdout ${JSON.stringify(r.stdout)}, stderr ${r.stderr}`);
    return r.firstOutputMs;
  };
  const bootFiles = await qemuBootFiles(bootCommand, 'boot');
  const qemuBoot = async () => {
    const r = await timeFirstOutput(microvmArgv(bootFiles), { timeoutMs: START_TIMEOUT_MS });
    if (guestStatusOf(r.status) !== 0 || !r.stdout.includes(marker)) throw new Error(`QEMU boot: exit ${r.status}, stdout ${JSON.stringify(r.stdout)}, stderr ${r.stderr}`);
    return r.firstOutputMs;
  };
  // Node's own start-up, for reading the figures: in the harness it is most of vmrun's.
  const nodeStart = async () => (await timeFirstOutput([process.execPath, '-e', 'console.log(1)'], { timeoutMs: START_TIMEOUT_MS })).firstOutputMs;
  // The warm-up run of `vmrunWarm` boots and saves the template; its timed runs restore it.
  const boot = await interleaved({
    vmrunBz: vmrunRun(kernels.bzImage, '--cold'),
    qemu: qemuBoot,
    vmrunVmlinux: vmrunRun(kernels.vmlinux, '--cold'),
    vmrunWarm: vmrunRun(kernels.vmlinux),
    nodeStart,
  });
  const nodeStartMs = round(median(boot.nodeStart));
  const qemuAnchor = {
    what: 'qemu-system-x86_64 -machine microvm -enable-kvm -cpu host -m 256, same bzImage, initramfs and cmdline, spawn to first output',
    value: round(median(boot.qemu)),
    unit: 'ms',
  };
  for (const [key, kernel] of [['vmrunBz', 'cold boot (--cold), bzImage, as QEMU'], ['vmrunVmlinux', 'cold boot (--cold), vmlinux, vmrun\'s default'], ['vmrunWarm', 'warm: restored template, vmlinux (goal: ratio < 0.2)']]) {
    report({
      bench: 'run',
      metric: `vmrun run busybox sh -c 'echo' to first output (${kernel}, 256M, whole CLI process)`,
      value: round(median(boot[key])),
      unit: 'ms',
      anchor: qemuAnchor,
      ratio: round(median(boot[key]) / median(boot.qemu)),
      nodeStartMs,
      runs: RUNS,
      where,
    });
  }

  // 3 (in-process, the library): a warm start's steps, from the template this run
  // already made: restore, the agent answering, identity, workload handed over.
  const { startImageRun } = await import(join(ROOT, 'dist', 'run', 'image-run.js'));
  const stepTimes = {};
  for (let i = -1; i < RUNS; i++) {
    const run = await startImageRun({ image, command: ['true'], kernel: kernels.vmlinux, kernelLogFd: 2 });
    if (run.start.kind !== 'template') throw new Error(`library warm start: expected a template restore, got ${JSON.stringify(run.start)}`);
    await run.machine.wait();
    if (i < 0) continue;
    for (const { step, ms } of run.start.steps) (stepTimes[step] ??= []).push(ms);
  }
  const toAgent = stepTimes['restore the template'].map((ms, i) => ms + stepTimes['agent answered'][i]);
  const toWork = toAgent.map((ms, i) => ms + stepTimes['identity (entropy, clock, hostname, MAC)'][i] + stepTimes['workload handed over'][i]);
  for (const [metric, values] of [
    ['library warm start: Machine.restore of the template (256M)', stepTimes['restore the template']],
    ['library warm start: restore to the agent accepting work', toAgent],
    ['library warm start: restore to the workload handed over (identity included)', toWork],
  ]) {
    report({ bench: 'run', metric, value: round(median(values)), unit: 'ms', anchor: qemuAnchor, ratio: round(median(values) / qemuAnchor.value), steps: Object.fromEntries(Object.entries(stepTimes).map(([k, v]) => [k, round(median(v))])), runs: RUNS, where });
  }

  // 2. Restore of a running shell loop to its first output.
  const loop = ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo "tick $i"; usleep 50000; done'];
  const ticking = /tick 20\n/;
  const started = await timeFirstOutput(vmrunArgv('run', '-d', '-q', '--name', 'bench-loop', '--kernel', kernels.bzImage, image, ...loop), { env: state.env, timeoutMs: START_TIMEOUT_MS });
  if (started.status !== 0) throw new Error(`vmrun run -d: status ${started.status}: ${started.stderr}`);
  await timeFirstOutput(vmrunArgv('logs', '-f', 'bench-loop'), { env: state.env, until: ticking, stop: 'SIGINT', timeoutMs: START_TIMEOUT_MS });
  const saved = await timeFirstOutput(vmrunArgv('snapshot', 'save', 'bench-loop', '-o', 'bench-loop', '--stop'), { env: state.env, timeoutMs: START_TIMEOUT_MS });
  if (saved.status !== 0) throw new Error(`vmrun snapshot save: status ${saved.status}: ${saved.stderr}`);
  const vmrunSnapshot = saved.stdout.trim();

  const loopFiles = await qemuBootFiles(loop, 'loop');
  const scratch = join(state.root, 'qemu-snapshots.qcow2');
  createScratchQcow2(scratch);
  const monitor = join(state.root, 'qemu-monitor.sock');
  await saveQemuSnapshot(microvmArgv({ ...loopFiles, scratch, monitor }), { monitor, ready: ticking, name: 'bench-loop', timeoutMs: START_TIMEOUT_MS });

  const resumed = /tick \d+\n/;
  const restore = await interleaved({
    vmrun: async () => (await timeFirstOutput(vmrunArgv('snapshot', 'restore', 'bench-loop'), { env: state.env, until: resumed, stop: 'SIGINT', timeoutMs: START_TIMEOUT_MS })).firstOutputMs,
    qemu: async () => (await timeFirstOutput([...microvmArgv({ ...loopFiles, scratch }), '-loadvm', 'bench-loop'], { until: resumed, stop: 'SIGKILL', timeoutMs: START_TIMEOUT_MS })).firstOutputMs,
  });
  report({
    bench: 'run',
    metric: 'vmrun snapshot restore of a busybox shell loop to first output (256M, whole CLI process)',
    value: round(median(restore.vmrun)),
    unit: 'ms',
    anchor: {
      what: 'qemu-system-x86_64 -machine microvm -enable-kvm ... -loadvm of the same guest (savevm to a qcow2 scratch drive), spawn to first output',
      value: round(median(restore.qemu)),
      unit: 'ms',
    },
    ratio: round(median(restore.vmrun) / median(restore.qemu)),
    nodeStartMs,
    snapshotBytes: { vmrun: statSync(vmrunSnapshot).size, qemuQcow2: statSync(scratch).size },
    runs: RUNS,
    where,
  });
} finally {
  state.cleanup();
}
