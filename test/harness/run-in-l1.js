// @ts-check
/**
 * One harness run: make sure the L1 image exists, write the job, boot L1 under QEMU,
 * stream the command's output while it runs, watch L1's heartbeat, enforce the
 * timeouts, report each phase's duration, and return the command's exit status.
 */
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HarnessError, HARNESS_L1_CRASH_EXIT_CODE, HARNESS_STALL_EXIT_CODE, HARNESS_TIMEOUT_EXIT_CODE } from './harness-error.js';
import { requireCommand, runTool } from './host-tools.js';
import { createJobDir, readExitStatus, writeRunScript } from './job-dir.js';
import { FileFollower } from './file-follower.js';
import { L1Console } from './l1-console.js';
import { ensureL1Image } from './l1-image.js';
import { ensureArm64Userland } from './arm64-userland.js';
import { l1Arch } from './l1-arch.js';
import { HEARTBEAT_INTERVAL_S, L1Watchdog } from './l1-heartbeat.js';
import { qemuArguments, startQemu } from './qemu-l1.js';
import { collectStallReport } from './stall-report.js';
import { KernelSymbols } from './kernel-symbols.js';

const HARNESS_DIR = dirname(fileURLToPath(import.meta.url));

/**
 * Test hook: wedge L1 this many seconds after the command starts (l1-init.sh), so a
 * test can show that the watchdog catches and explains a stall.
 */
const WEDGE_VARIABLE = 'NESTED_KVM_TEST_WEDGE_AFTER_S';
/** How often the watchdog looks at the heartbeat. */
const WATCHDOG_CHECK_MS = 1000;

/** Prints one of the harness's own lines on stderr. @param {string} line */
export function log(line) {
  process.stderr.write(`nested-kvm: ${line}\n`);
}

/** @param {number} ms */
function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Runs the command in L1 and returns its exit status.
 * @param {import('./harness-options.js').HarnessOptions} options
 * @returns {Promise<number>}
 */
export async function runInL1(options) {
  const arch = l1Arch(options.arch);
  const cacheStart = performance.now();
  // The image first: it says what is wrong with apt's lists before anything is downloaded.
  const image = ensureL1Image(log, arch);
  const l1Qemu = arch.qemu(log);
  const qemu = l1Qemu.command;
  log(`L1 image ${image.built ? 'built' : 'cached'} in ${seconds(performance.now() - cacheStart)} (${image.description}; ${l1Qemu.description})`);

  const job = createJobDir();
  /** @type {ReturnType<typeof startQemu> | undefined} */
  let l1;
  const stopOnSignal = (/** @type {NodeJS.Signals} */ signal) => {
    l1?.kill();
    rmSync(job.dir, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  const followers = [
    new FileFollower(job.stdout, (chunk) => process.stdout.write(chunk)),
    new FileFollower(job.stderr, (chunk) => process.stderr.write(chunk)),
  ];
  /** @type {Buffer[]} */
  const qemuStderr = [];
  /** @type {NodeJS.Timeout[]} */
  const timers = [];
  try {
    if (arch.chrootIntoHost) buildKvmHold(job.kvmHold);
    writeRunScript(job, {
      command: options.command,
      cwd: process.cwd(),
      env: process.env,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      groups: process.getgroups?.() ?? [],
      privateTmp: options.privateTmp,
      userland: arch.arm64Userland ? ensureArm64Userland(log) : undefined,
    });
    const qemuStart = performance.now();
    let kvmReadyAt = 0;
    let initStartAt = 0;
    let kernelUptimeMs = 0;
    let commandStartAt = 0;
    let commandEndAt = 0;
    /** @type {string | undefined} why the harness killed QEMU */
    let killedBecause;
    /** @type {L1Watchdog | undefined} */
    let watchdog;
    /** @type {Promise<string> | undefined} */
    let stallReport;
    const l1Console = new L1Console({
      echo: options.verbose ? (chunk) => process.stderr.write(chunk) : undefined,
      onProgress: ({ event, atMs }) => {
        const initStarted = /^init started, uptime ([\d.]+)$/.exec(event);
        if (initStarted) {
          initStartAt = atMs;
          kernelUptimeMs = Number(initStarted[1]) * 1000;
        } else if (event === 'kvm-ready') {
          kvmReadyAt = atMs;
          // The heartbeat starts now; the bound counts from here. An L1 without a
          // heartbeat port (aarch64) has only --timeout.
          if (arch.hasHeartbeatPort) watchdog = new L1Watchdog({ boundMs: options.stallTimeoutS * 1000, idleBoundMs: options.idleTimeoutS * 1000, startedAtMs: atMs });
          const firmware = initStartAt - kernelUptimeMs - qemuStart;
          log(`QEMU start to /dev/kvm in L1: ${seconds(atMs - qemuStart)} (QEMU+firmware+kernel load ` +
            `${seconds(firmware)}, kernel boot ${seconds(kernelUptimeMs)}, modules+9p ${seconds(atMs - initStartAt)})`);
        } else if (event.startsWith('kvm-hold')) {
          log(event);
        } else if (event === 'command-start') commandStartAt = atMs;
        else if (event.startsWith('command-exit')) commandEndAt = atMs;
      },
    });
    followers.push(new FileFollower(job.console, (chunk) => l1Console.push(chunk)));
    followers.push(new FileFollower(job.heartbeat, (chunk) => watchdog?.push(chunk, performance.now())));
    const wedgeAfterS = Number(process.env[WEDGE_VARIABLE] ?? 0);
    if (wedgeAfterS > 0) log(`test hook ${WEDGE_VARIABLE}=${wedgeAfterS}: L1 will be wedged ${wedgeAfterS} s after the command starts`);
    l1 = startQemu(qemu, [...l1Qemu.arguments, ...qemuArguments({
      arch,
      kernel: image.kernel,
      initramfs: image.initramfs,
      memoryMiB: options.memoryMiB,
      cpus: options.cpus,
      verbose: options.verbose,
      jobDir: job.dir,
      imageDir: image.dir,
      consoleLog: job.console,
      heartbeatLog: job.heartbeat,
      qmpSocket: job.qmpSocket,
      heartbeatS: HEARTBEAT_INTERVAL_S,
      wedgeAfterS: wedgeAfterS > 0 ? Math.ceil(wedgeAfterS) : 0,
    })], (chunk) => {
      if (options.verbose) process.stderr.write(chunk);
      qemuStderr.push(chunk);
    });
    const killL1 = (/** @type {string} */ reason) => {
      killedBecause ??= reason;
      l1?.kill();
    };
    timers.push(setTimeout(() => killL1('timeout'), options.timeoutS * 1000));
    timers.push(setTimeout(() => {
      if (!kvmReadyAt) killL1('boot-timeout');
    }, options.bootTimeoutS * 1000));
    // The watchdog: once it calls L1 stalled, collect the report, then kill QEMU.
    const checkStall = setInterval(() => {
      const reason = !killedBecause && !stallReport && !commandEndAt ? watchdog?.stallReason(performance.now()) : undefined;
      if (!reason) return;
      clearInterval(checkStall);
      log(`L1 stalled: ${reason}; collecting what explains it`);
      let symbols;
      try {
        symbols = KernelSymbols.load(image.kernelSymbols);
      } catch {
        // Not saved yet (L1's first boot stalled): the report shows bare addresses.
      }
      stallReport = collectStallReport({
        qemuPid: l1?.pid,
        qmpSocket: job.qmpSocket,
        symbols,
        console: l1Console,
        heartbeat: watchdog?.describe() ?? '',
        reason,
      }).catch((e) => `(the stall report failed: ${e instanceof Error ? e.stack : e})`);
      void stallReport.finally(() => killL1('stall'));
    }, WATCHDOG_CHECK_MS);
    timers.push(checkStall);

    const exit = await l1.exited;
    for (const f of followers) f.drain();
    const status = readExitStatus(job);
    const consoleTail = () => `--- last lines of L1's console ---\n${l1Console.tail()}`;
    if (stallReport) {
      const report = await stallReport;
      throw new HarnessError(`L1 stalled (--stall-timeout ${options.stallTimeoutS} s); QEMU killed; what explains it follows`, {
        detail: `${report}\n${killedBecause === 'stall' ? '' : `(QEMU ended before the report was complete: ${killedBecause ?? 'by itself'})\n`}${consoleTail()}`,
        exitCode: HARNESS_STALL_EXIT_CODE,
      });
    }
    if (killedBecause === 'timeout') {
      throw new HarnessError(`--timeout ${options.timeoutS} s expired; QEMU killed`, {
        detail: consoleTail(),
        exitCode: HARNESS_TIMEOUT_EXIT_CODE,
      });
    }
    if (killedBecause === 'boot-timeout') {
      throw new HarnessError(`L1 did not bring up /dev/kvm within --boot-timeout ${options.bootTimeoutS} s; QEMU killed`, {
        detail: consoleTail(),
      });
    }
    if (exit.error) throw new HarnessError(`could not start ${qemu}: ${exit.error.message}`);
    if (status === undefined) {
      const qemuSaid = Buffer.concat(qemuStderr).toString('utf8').trim();
      const how = exit.code === null ? `signal ${exit.signal}` : `exit status ${exit.code}`;
      const detail = [qemuSaid && `--- QEMU's stderr ---\n${qemuSaid}`, consoleTail()].filter(Boolean).join('\n');
      // Only while the command ran: an L1 that panics on its way up (a broken image)
      // would do so again, and is the harness's own failure.
      if (!l1Console.failure && l1Console.kernelCrash && commandStartAt) {
        throw new HarnessError(`L1's kernel crashed (${l1Console.kernelCrash}); L1 ended (QEMU ${how}) without the command's exit status`, {
          detail,
          exitCode: HARNESS_L1_CRASH_EXIT_CODE,
        });
      }
      const reason = l1Console.failure ? `L1 init failed: ${l1Console.failure}` : `L1 ended (QEMU ${how}) without the command's exit status`;
      throw new HarnessError(reason, { detail });
    }
    const end = commandEndAt || performance.now();
    log(`command ran ${seconds(end - (commandStartAt || kvmReadyAt))} in L1, exit status ${status}; ` +
      `total ${seconds(performance.now() - cacheStart)}`);
    return status;
  } finally {
    for (const t of timers) clearTimeout(t); // also ends the watchdog's interval
    for (const f of followers) f.drain();
    process.off('SIGINT', stopOnSignal);
    process.off('SIGTERM', stopOnSignal);
    rmSync(job.dir, { recursive: true, force: true });
  }
}


/**
 * Builds probes/kvm-hold.c as the job's `kvmHold` (L1 runs the host's tree, so a host
 * build runs there), which l1-init.sh runs before the command: the VM it holds keeps
 * L1's KVM static keys from flipping, the cause of the L1 stalls (see the file).
 * Without a compiler the harness goes on without it, and says so.
 * @param {string} out
 */
function buildKvmHold(out) {
  try {
    // Static: L1's init runs it from its own root, an initramfs with no glibc.
    runTool(requireCommand('cc'), ['-O2', '-static', '-o', out, join(HARNESS_DIR, 'probes', 'kvm-hold.c')], { timeoutMs: 60_000 });
  } catch (e) {
    log(`cannot build probes/kvm-hold.c (${/** @type {Error} */ (e).message}); L1's KVM static keys will flip with every VM, which has stalled L1 under TCG`);
  }
}
