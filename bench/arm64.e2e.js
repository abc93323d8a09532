#!/usr/bin/env node
// arm64 benchmark (issue 14): vmrun's arm64 backend against Debian's arm64 QEMU
// (qemu-system-aarch64 -machine virt -enable-kvm) in ONE aarch64 harness L1 (KVM arm64
// nested in QEMU's TCG: docs/testing.md), the same arm64 Image, initramfs and command
// line on both, 1 vCPU, 256 MiB:
//  1. boot to first output: `vmrun boot` (whole CLI process) and QEMU, each from its
//     spawn to /init's first line (`quiet`: the first the guest prints); also vmrun's
//     library (Machine.boot in this process) to the same line and to vCPU 0's first
//     guest entry, and Node's own start (`node -e`), the floor of any CLI figure;
//  2. restore to first output: a guest counting every 50 ms saved while running,
//     `vmrun snapshot restore` (whole CLI process) against a fresh QEMU with -loadvm of
//     the same guest saved by savevm (on a qcow2 scratch drive), each from its spawn
//     to the first whole count line; also Machine.restore to that line and to the
//     first guest entry (no QEMU counterpart: QEMU does not report it).
// The guest is Debian's arm64 kernel (the one L1 boots) with test/arm64/l2-init.sh
// as /init: vmrun's own arm64 kernel has no PL011, the only UART of QEMU's virt
// machine. `console=ttyS0 console=ttyAMA0` names each machine's UART (the 16550 and
// the PL011); the other one does not exist there.
// Run from an x86 host: `npm run bench -- arm64` (or `node bench/arm64.e2e.js`) cross-
// builds the addon, stages QEMU for arm64 with its libraries (test/harness/arm64-qemu.js)
// and re-runs itself in the aarch64 L1. Prints JSON lines (bench/stats.js; ratio =
// vmrun / QEMU) and a table. Runs per figure: VMRUN_BENCH_RUNS (default 3) after one
// untimed warm-up each, interleaved; a restore that prints nothing within 2 min is a
// failed sample, said and counted, and the run goes on. No network anywhere (QEMU:
// -nodefaults).
import { copyFileSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, privateVmrunState, runInAarch64L1 } from './e2e/environment.js';
import { timeFirstOutput } from './e2e/first-output.js';
import { createScratchQcow2, qemuUnavailableReason, saveQemuSnapshot, virtArgv } from './e2e/qemu.js';
import { interleaved } from './e2e/samples.js';
import { median, report, round } from './stats.js';
import { prepareArm64Guest } from '../test/arm64/guest-files.js';
import { findCommand } from '../test/harness/host-tools.js';

const SCRIPT = fileURLToPath(import.meta.url);
const LABEL = 'bench/arm64.e2e.js';
const RUNS = Number(process.env.VMRUN_BENCH_RUNS ?? 3);
/** One CLI start in the aarch64 L1 takes 20-60 s on a loaded host (Node and oclif under TCG). */
const START_TIMEOUT_MS = 300_000;
/** A restored guest prints within seconds; beyond this it will not. */
const RESTORE_TIMEOUT_MS = 120_000;
/** The whole run in L1: about 15 min at host load 5-10. */
const HARNESS_TIMEOUT_S = 2700;
/** What the host hands to the run in L1 (JSON): the guest's files and the staged QEMU. */
const CONFIG_VARIABLE = 'VMRUN_ARM64_BENCH';

if (process.arch !== 'arm64') process.exit(await runOnHost());
await runInL1();

/**
 * On the x86 host: the arm64 addon (cross-built), the guest's initramfs, QEMU for
 * arm64 and an empty qcow2 for its savevm, then this script in the aarch64 L1.
 * @returns {Promise<number>} the L1 run's exit status
 */
async function runOnHost() {
  const log = (line) => process.stderr.write(`${LABEL}: ${line}\n`);
  // The aarch64 harness's packages are opt-in (scripts/setup.sh does not install
  // them): without them this bench is skipped, and says so, rather than failing
  // `npm run bench` as a whole.
  const missing = ['qemu-system-aarch64', 'aarch64-linux-gnu-g++'].filter((command) => !findCommand(command));
  if (missing.length) {
    log(`skipped: ${missing.join(' and ')} not found (the opt-in arm64 packages: dpkg --add-architecture arm64 && apt-get update && apt-get install qemu-system-arm g++-aarch64-linux-gnu; docs/testing.md)`);
    return 0;
  }
  // qemu-img on the host makes the scratch drive (L1 has no qemu-img).
  const qemuMissing = qemuUnavailableReason();
  if (qemuMissing) throw new Error(`${LABEL} needs qemu-img on the host: ${qemuMissing}`);
  const { ensureArm64Qemu } = await import('../test/harness/arm64-qemu.js');
  const qemu = ensureArm64Qemu(log);
  log('cross-building the arm64 addon and the guest initramfs (test/arm64/guest-files.js)');
  const guest = await prepareArm64Guest({ addon: true });
  try {
    const qcow2 = join(guest.scratch, 'qemu-snapshots.qcow2');
    createScratchQcow2(qcow2);
    const config = { kernel: guest.kernel, initrd: guest.initramfs, qcow2, qemu: qemu.qemu, qemuLibraryPath: qemu.libraryPath };
    const loadBefore = loadavg().map((l) => l.toFixed(1)).join(' ');
    log(`host load average before the run: ${loadBefore}; ${qemu.description}`);
    const status = runInAarch64L1(SCRIPT, { [CONFIG_VARIABLE]: JSON.stringify(config) }, HARNESS_TIMEOUT_S);
    log(`host load average after the run: ${loadavg().map((l) => l.toFixed(1)).join(' ')} (before: ${loadBefore})`);
    return status;
  } finally {
    rmSync(guest.scratch, { recursive: true, force: true });
  }
}

/** In the aarch64 L1: the measurements. */
async function runInL1() {
  const configText = process.env[CONFIG_VARIABLE];
  if (!configText) throw new Error(`${LABEL}: ${CONFIG_VARIABLE} is not set; run it from an x86 host, which stages the guest and QEMU and starts the aarch64 L1`);
  /** @type {{ kernel: string, initrd: string, qcow2: string, qemu: string, qemuLibraryPath: string }} */
  const config = JSON.parse(configText);
  const { Machine } = await import(join(ROOT, 'dist', 'index.js'));
  const state = privateVmrunState();
  const qemuEnv = { ...process.env, LD_LIBRARY_PATH: config.qemuLibraryPath };
  const vmrunArgv = (...args) => [process.execPath, join(ROOT, 'bin', 'run.js'), ...args];
  const where = 'aarch64 harness L1 (QEMU TCG with EL2 on a 2-core x86 host, KVM arm64 nested)';
  const guestFiles = { kernel: config.kernel, initrd: config.initrd };

  const cmdline = 'console=ttyS0 console=ttyAMA0 quiet panic=-1';
  const started = /vmrun-arm64-init: started\r?\n/;
  const countCmdline = `${cmdline} vmrun_test.count=1000000 vmrun_test.period=0.05`;
  const countLine = /vmrun-arm64-count \d+ uptime [\d.]+ online \S+ cpu1-uptime \S+ end\r?\n/;

  try {
    // 1. Boot to /init's first line.
    /** @type {Record<string, number[]>} */
    const firstEntry = { boot: [], restore: [] };
    // QEMU first: one that cannot start in L1 shows within a minute.
    const boot = await interleaved({
      qemu: async () => {
        const r = await timeFirstOutput(virtArgv({ qemu: config.qemu, ...guestFiles, cmdline }), { env: qemuEnv, until: started, timeoutMs: START_TIMEOUT_MS });
        if (r.status !== 0) throw new Error(`QEMU boot: status ${r.status}, stdout ${JSON.stringify(r.stdout.slice(-500))}, stderr ${r.stderr}`);
        return r.untilMs;
      },
      vmrunCli: async () => {
        const r = await timeFirstOutput(vmrunArgv('boot', config.kernel, '--initrd', config.initrd, '--cpus', '1', '--memory', '256M', '--cmdline', cmdline), { env: state.env, until: started, timeoutMs: START_TIMEOUT_MS });
        if (r.status !== 0) throw new Error(`vmrun boot: status ${r.status}, stdout ${JSON.stringify(r.stdout.slice(-500))}, stderr ${r.stderr}`);
        return r.untilMs;
      },
      vmrunLibrary: async () => {
        const t0 = process.hrtime.bigint();
        const m = Machine.boot({ ...guestFiles, cmdline, memory: '256M', cpus: 1 });
        const ms = await outputUntil(m, started, t0);
        firstEntry.boot.push(Number(m.stats().firstEntryNs - t0) / 1e6);
        const exit = await boundedWait(m);
        if (exit.exitCode !== 0) throw new Error(`Machine.boot: the guest ended with status ${exit.exitCode} (${exit.reason}) ${exit.message}`);
        return ms;
      },
      nodeStart: async () => (await timeFirstOutput([process.execPath, '-e', 'console.log(1)'], { timeoutMs: START_TIMEOUT_MS })).firstOutputMs,
    }, { runs: RUNS, label: LABEL, what: 'to the first output' });
    firstEntry.boot = firstEntry.boot.slice(1); // the warm-up's
    const nodeStartMs = round(median(boot.nodeStart));
    const qemuBootAnchor = {
      what: 'qemu-system-aarch64 -machine virt,gic-version=3 -enable-kvm -cpu host -m 256 -smp 1, same Image, initramfs and cmdline, spawn to /init\'s first line',
      value: round(median(boot.qemu)),
      unit: 'ms',
      samples: boot.qemu.map((v) => round(v, 1)),
    };
    const results = [
      { metric: 'boot to first output: vmrun boot (whole CLI process, spawn to /init\'s first line)', values: boot.vmrunCli, anchor: qemuBootAnchor },
      { metric: 'boot to first output: Machine.boot (library, in process) to /init\'s first line', values: boot.vmrunLibrary, anchor: qemuBootAnchor },
      { metric: 'boot: Machine.boot (library) to vCPU 0\'s first guest entry', values: firstEntry.boot },
    ];

    // 2. Restore of the counting guest to its first whole line.
    const name = 'arm64-bench-counter';
    const detached = await timeFirstOutput(vmrunArgv('boot', '-d', '--name', name, config.kernel, '--initrd', config.initrd, '--cpus', '1', '--memory', '256M', '--cmdline', countCmdline), { env: state.env, timeoutMs: START_TIMEOUT_MS });
    if (detached.status !== 0) throw new Error(`vmrun boot -d: status ${detached.status}: ${detached.stderr}`);
    const ticking = /vmrun-arm64-count 20 /;
    await timeFirstOutput(vmrunArgv('logs', '-f', name), { env: state.env, until: ticking, stop: 'SIGINT', timeoutMs: START_TIMEOUT_MS });
    const vmrunSnapshot = join(state.root, 'counter.vmsnap');
    const saved = await timeFirstOutput(vmrunArgv('snapshot', 'save', name, '-o', vmrunSnapshot, '--stop'), { env: state.env, timeoutMs: START_TIMEOUT_MS });
    if (saved.status !== 0) throw new Error(`vmrun snapshot save: status ${saved.status}: ${saved.stderr}`);

    // QEMU's drive in L1's tmpfs, as vmrun's snapshot: neither reads its snapshot over 9p.
    const scratch = join(state.root, 'qemu-snapshots.qcow2');
    copyFileSync(config.qcow2, scratch);
    const monitor = join(state.root, 'qemu-monitor.sock');
    const countArgv = (extra) => virtArgv({ qemu: config.qemu, ...guestFiles, cmdline: countCmdline, scratch, ...extra });
    await saveQemuSnapshot(countArgv({ monitor }), { monitor, ready: ticking, name: 'counter', timeoutMs: START_TIMEOUT_MS, env: qemuEnv });

    // A restored guest that prints nothing is a failed sample, said on stderr and
    // counted, not the end of the run (the other contenders' samples still tell).
    const restore = await interleaved({
      vmrunLibrary: failedAsNaN('Machine.restore', async () => {
        const t0 = process.hrtime.bigint();
        const m = await Machine.restore(vmrunSnapshot);
        try {
          const ms = await outputUntil(m, countLine, t0, RESTORE_TIMEOUT_MS);
          firstEntry.restore.push(Number(m.stats().firstEntryNs - t0) / 1e6);
          return ms;
        } catch (e) {
          firstEntry.restore.push(Number.NaN);
          const stats = m.stats();
          throw new Error(`${e.message}; machine: exits ${JSON.stringify(stats.exits)}, first guest entry ${stats.firstEntryNs ? `${Number(stats.firstEntryNs - t0) / 1e6} ms` : 'never'}, console bytes ${stats.consoleBytes}`);
        } finally {
          m.stop();
          await boundedWait(m);
        }
      }),
      qemu: failedAsNaN('QEMU -loadvm', async () => (await timeFirstOutput([...countArgv({}), '-loadvm', 'counter'], { env: qemuEnv, until: countLine, stop: 'SIGKILL', timeoutMs: RESTORE_TIMEOUT_MS })).untilMs),
      vmrunCli: failedAsNaN('vmrun snapshot restore', async () => (await timeFirstOutput(vmrunArgv('snapshot', 'restore', vmrunSnapshot), { env: state.env, until: countLine, stop: 'SIGINT', timeoutMs: RESTORE_TIMEOUT_MS })).untilMs),
    }, { runs: RUNS, label: LABEL, what: 'to the first count line' });
    firstEntry.restore = firstEntry.restore.slice(1);
    const qemuRestoreAnchor = {
      what: 'qemu-system-aarch64 -machine virt ... -loadvm of the same guest (savevm to a qcow2 scratch drive), spawn to the first count line',
      value: round(median(succeeded(restore.qemu))),
      unit: 'ms',
      samples: restore.qemu.map((v) => round(v, 1)),
    };
    results.push(
      { metric: 'restore to first output: vmrun snapshot restore (whole CLI process, spawn to the first count line)', values: restore.vmrunCli, anchor: qemuRestoreAnchor },
      { metric: 'restore to first output: Machine.restore (library, in process) to the first count line', values: restore.vmrunLibrary, anchor: qemuRestoreAnchor },
      { metric: 'restore to first guest instruction: Machine.restore (library) to vCPU 0\'s first guest entry', values: firstEntry.restore },
    );

    const extra = {
      nodeStartMs,
      snapshotBytes: { vmrun: statSync(vmrunSnapshot).size, qemuQcow2: statSync(scratch).size },
      l1LoadAverage: loadavg().map((l) => round(l, 2)),
      runs: RUNS,
      where,
    };
    for (const r of results) {
      report({
        bench: 'arm64',
        metric: r.metric,
        value: round(median(succeeded(r.values))),
        unit: 'ms',
        ...(r.anchor ? { anchor: r.anchor, ratio: round(median(succeeded(r.values)) / r.anchor.value) } : {}),
        samples: r.values.map((v) => round(v, 1)),
        failed: r.values.length - succeeded(r.values).length,
        ...extra,
      });
    }
    printTable(results, { 'Node start (node -e, the floor of a CLI figure)': boot.nodeStart });
  } finally {
    state.cleanup();
  }
}

/**
 * Resolves with the ms from `t0` (process.hrtime.bigint()) until the machine's console
 * output matches `pattern`; stops the machine and rejects after `timeoutMs` or if it
 * ends first.
 * @param {{ output: import('node:stream').Readable, stop(): void, wait(): Promise<any> }} m
 * @param {RegExp} pattern
 * @param {bigint} t0
 * @param {number} [timeoutMs]
 * @returns {Promise<number>}
 */
function outputUntil(m, pattern, t0, timeoutMs = START_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      m.stop();
      reject(new Error(`the machine printed no ${pattern} within ${timeoutMs} ms; console: ${JSON.stringify(text.slice(-500))}`));
    }, timeoutMs);
    m.output.on('data', (d) => {
      if (text === null) return;
      text += d.toString('latin1');
      if (pattern.test(text)) {
        clearTimeout(timer);
        text = null;
        resolve(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    });
    m.wait().then((exit) => {
      if (text === null) return;
      clearTimeout(timer);
      reject(new Error(`the machine ended (${exit.reason}, status ${exit.exitCode}) before printing ${pattern}; console: ${JSON.stringify(text.slice(-500))}`));
    }, reject);
  });
}

/**
 * `sample`, whose failure is said on stderr and taken as NaN (a failed sample, left
 * out of the median and counted).
 * @param {string} what
 * @param {() => Promise<number>} sample
 * @returns {() => Promise<number>}
 */
function failedAsNaN(what, sample) {
  return async () => {
    try {
      return await sample();
    } catch (e) {
      process.stderr.write(`${LABEL}: ${what} failed: ${e instanceof Error ? e.message : String(e)}\n`);
      return Number.NaN;
    }
  };
}

/**
 * The samples that did not fail (failedAsNaN).
 * @param {number[]} values
 */
function succeeded(values) {
  return values.filter((v) => !Number.isNaN(v));
}

/**
 * The machine's exit, stopping it if it has not ended within START_TIMEOUT_MS.
 * @param {{ stop(): void, wait(): Promise<any> }} m
 */
async function boundedWait(m) {
  const timer = setTimeout(() => m.stop(), START_TIMEOUT_MS);
  try {
    return await m.wait();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The figures as a Markdown table on stdout: median (of the samples that did not
 * fail) and samples of vmrun and of QEMU, ratio.
 * @param {{ metric: string, values: number[], anchor?: { value: number, samples: number[] } }[]} results
 * @param {Record<string, number[]>} floors  rows without an anchor
 */
function printTable(results, floors) {
  const ms = (v) => (Number.isNaN(v) ? 'failed' : `${(v / 1000).toFixed(2)} s`);
  const rows = [
    ...results.map((r) => [
      r.metric,
      ms(median(succeeded(r.values))),
      r.values.map(ms).join(', '),
      r.anchor ? ms(r.anchor.value) : '',
      r.anchor ? r.anchor.samples.map(ms).join(', ') : '',
      r.anchor ? (median(succeeded(r.values)) / r.anchor.value).toFixed(2) : '',
    ]),
    ...Object.entries(floors).map(([what, values]) => [what, ms(median(values)), values.map(ms).join(', '), '', '', '']),
  ];
  console.log(['| | vmrun (median) | samples | QEMU (median) | samples | ratio vmrun/QEMU |', '| --- | --- | --- | --- | --- | --- |', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n'));
}
