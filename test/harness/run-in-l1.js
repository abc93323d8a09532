// @ts-check
/**
 * One harness run: make sure the L1 image exists, write the job, boot L1 under QEMU,
 * stream the command's output while it runs, enforce the timeouts, report each
 * phase's duration, and return the command's exit status.
 */
import { rmSync } from 'node:fs';
import { HarnessError, HARNESS_TIMEOUT_EXIT_CODE } from './harness-error.js';
import { requireCommand } from './host-tools.js';
import { createJobDir, readExitStatus, writeRunScript } from './job-dir.js';
import { FileFollower } from './file-follower.js';
import { L1Console } from './l1-console.js';
import { ensureL1Image } from './l1-image.js';
import { qemuArguments, startQemu } from './qemu-l1.js';

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
  const qemu = requireCommand('qemu-system-x86_64');
  const cacheStart = performance.now();
  const image = ensureL1Image(log);
  log(`L1 image ${image.built ? 'built' : 'cached'} in ${seconds(performance.now() - cacheStart)} (${image.description})`);

  const job = createJobDir();
  /** @type {{ kill: () => void, exited: Promise<{ code: number | null, signal: NodeJS.Signals | null, error?: Error }> } | undefined} */
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
    writeRunScript(job, {
      command: options.command,
      cwd: process.cwd(),
      env: process.env,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      groups: process.getgroups?.() ?? [],
    });
    const qemuStart = performance.now();
    let kvmReadyAt = 0;
    let initStartAt = 0;
    let kernelUptimeMs = 0;
    let commandStartAt = 0;
    let commandEndAt = 0;
    /** @type {string | undefined} why the harness killed QEMU */
    let killedBecause;
    const l1Console = new L1Console({
      echo: options.verbose ? (chunk) => process.stderr.write(chunk) : undefined,
      onProgress: ({ event, atMs }) => {
        const initStarted = /^init started, uptime ([\d.]+)$/.exec(event);
        if (initStarted) {
          initStartAt = atMs;
          kernelUptimeMs = Number(initStarted[1]) * 1000;
        } else if (event === 'kvm-ready') {
          kvmReadyAt = atMs;
          const firmware = initStartAt - kernelUptimeMs - qemuStart;
          log(`QEMU start to /dev/kvm in L1: ${seconds(atMs - qemuStart)} (QEMU+firmware+kernel load ` +
            `${seconds(firmware)}, kernel boot ${seconds(kernelUptimeMs)}, modules+9p ${seconds(atMs - initStartAt)})`);
        } else if (event === 'command-start') commandStartAt = atMs;
        else if (event.startsWith('command-exit')) commandEndAt = atMs;
      },
    });
    followers.push(new FileFollower(job.console, (chunk) => l1Console.push(chunk)));
    l1 = startQemu(qemu, qemuArguments({
      kernel: image.kernel,
      initramfs: image.initramfs,
      memoryMiB: options.memoryMiB,
      cpus: options.cpus,
      verbose: options.verbose,
      jobDir: job.dir,
      consoleLog: job.console,
    }), (chunk) => {
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

    const exit = await l1.exited;
    for (const f of followers) f.drain();
    const status = readExitStatus(job);
    const consoleTail = () => `--- last lines of L1's console ---\n${l1Console.tail()}`;
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
      const reason = l1Console.failure ? `L1 init failed: ${l1Console.failure}` : `L1 ended (QEMU ${how}) without the command's exit status`;
      throw new HarnessError(reason, {
        detail: [qemuSaid && `--- QEMU's stderr ---\n${qemuSaid}`, consoleTail()].filter(Boolean).join('\n'),
      });
    }
    const end = commandEndAt || performance.now();
    log(`command ran ${seconds(end - (commandStartAt || kvmReadyAt))} in L1, exit status ${status}; ` +
      `total ${seconds(performance.now() - cacheStart)}`);
    return status;
  } finally {
    for (const t of timers) clearTimeout(t);
    for (const f of followers) f.drain();
    process.off('SIGINT', stopOnSignal);
    process.off('SIGTERM', stopOnSignal);
    rmSync(job.dir, { recursive: true, force: true });
  }
}

