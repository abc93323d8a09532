// @ts-check
/**
 * nested-kvm: runs a command inside an L1 Linux booted under QEMU's TCG, whose
 * emulated AMD SVM gives it a real /dev/kvm, with the host's files at the same paths.
 * See usage() for the interface; the exit status is the command's own.
 */
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { HarnessError, HARNESS_TIMEOUT_EXIT_CODE } from './harness-error.js';
import { requireCommand } from './host-tools.js';
import { createJobDir, readExitStatus, writeRunScript } from './job-dir.js';
import { FileFollower } from './file-follower.js';
import { L1Console } from './l1-console.js';
import { ensureL1Image } from './l1-image.js';
import { qemuArguments, startQemu } from './qemu-l1.js';

const DEFAULT_MEMORY_MIB = 4096;
const DEFAULT_CPUS = 2;
/** Generous: a whole e2e suite under TCG can take many minutes. */
const DEFAULT_TIMEOUT_S = 3600;
/** L1 reaches /dev/kvm in about 13 s here; 300 s means it is stuck, not slow. */
const DEFAULT_BOOT_TIMEOUT_S = 300;

function usage() {
  return `usage: test/harness/nested-kvm [options] -- COMMAND [ARG...]

Boots an L1 Linux under qemu-system-x86_64 -cpu max (TCG), whose emulated SVM
gives it a real /dev/kvm, and runs COMMAND there as you, in the current
directory, with your environment and the host's files at the same paths.
COMMAND's stdout/stderr stream to the harness's; its exit status is the
harness's. The harness's own failures exit 125, an expired --timeout 124.

options:
  --memory SIZE        L1's RAM, e.g. 4G or 6144M (default 4G)
  --cpus N             L1's vCPUs (default 2)
  --timeout S          kill QEMU after S seconds in all (default ${DEFAULT_TIMEOUT_S})
  --boot-timeout S     fail if /dev/kvm is not up after S seconds (default ${DEFAULT_BOOT_TIMEOUT_S})
  --verbose            echo L1's console (kernel log) to stderr
  -h, --help           this text

environment: VMRUN_CACHE (cache root; else $XDG_CACHE_HOME/vmrun or
~/.cache/vmrun), VMRUN_L1_KERNEL_PACKAGE (pin the Debian kernel package).
Inside L1 the command sees VMRUN_NESTED_L1=1.
`;
}

/**
 * The parsed command line.
 * @typedef {{ memoryMiB: number, cpus: number, timeoutS: number, bootTimeoutS: number, verbose: boolean, command: string[] }} HarnessOptions
 */

/**
 * Parses the harness's arguments; a HarnessError naming the bad one.
 * @param {string[]} argv
 * @returns {HarnessOptions | 'help'}
 */
export function parseArguments(argv) {
  /** @type {HarnessOptions} */
  const options = {
    memoryMiB: DEFAULT_MEMORY_MIB,
    cpus: DEFAULT_CPUS,
    timeoutS: DEFAULT_TIMEOUT_S,
    bootTimeoutS: DEFAULT_BOOT_TIMEOUT_S,
    verbose: false,
    command: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = /** @type {string} */ (argv[i]);
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw usageError(`${arg} needs a value`);
      return v;
    };
    if (arg === '--') {
      options.command = argv.slice(i + 1);
      break;
    } else if (arg === '-h' || arg === '--help') return 'help';
    else if (arg === '--verbose') options.verbose = true;
    else if (arg === '--memory') options.memoryMiB = parseMemory(value());
    else if (arg === '--cpus') options.cpus = parsePositiveInteger('--cpus', value(), availableParallelism() * 4);
    else if (arg === '--timeout') options.timeoutS = parsePositiveInteger('--timeout', value(), 7 * 24 * 3600);
    else if (arg === '--boot-timeout') options.bootTimeoutS = parsePositiveInteger('--boot-timeout', value(), 24 * 3600);
    else throw usageError(`unknown option ${JSON.stringify(arg)} (the command goes after --)`);
  }
  if (options.command.length === 0) throw usageError('no command: give it after --');
  return options;
}

/** @param {string} message */
function usageError(message) {
  return new HarnessError(`${message}\n${usage()}`);
}

/** @param {string} text */
function parseMemory(text) {
  const m = /^(\d+)([MG]?)$/i.exec(text);
  const mib = m ? Number(m[1]) * (m[2]?.toUpperCase() === 'G' ? 1024 : 1) : NaN;
  if (!(mib >= 512 && mib <= 1024 * 1024)) {
    throw usageError(`--memory ${JSON.stringify(text)}: expected a size from 512M to 1024G, like 4G or 6144M`);
  }
  return mib;
}

/** @param {string} flag @param {string} text @param {number} max */
function parsePositiveInteger(flag, text, max) {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= max)) throw usageError(`${flag} ${JSON.stringify(text)}: expected a whole number from 1 to ${max}`);
  return n;
}

/** @param {string} line */
function log(line) {
  process.stderr.write(`nested-kvm: ${line}\n`);
}

/** @param {number} ms */
function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Runs the command in L1 and returns its exit status.
 * @param {HarnessOptions} options
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
    let commandStartAt = 0;
    let commandEndAt = 0;
    /** @type {string | undefined} why the harness killed QEMU */
    let killedBecause;
    const console = new L1Console({
      echo: options.verbose ? (chunk) => process.stderr.write(chunk) : undefined,
      onProgress: ({ event, atMs }) => {
        if (event === 'kvm-ready') {
          kvmReadyAt = atMs;
          log(`QEMU start to /dev/kvm in L1: ${seconds(atMs - qemuStart)}`);
        } else if (event === 'command-start') commandStartAt = atMs;
        else if (event.startsWith('command-exit')) commandEndAt = atMs;
      },
    });
    followers.push(new FileFollower(job.console, (chunk) => console.push(chunk)));
    l1 = startQemu(qemu, qemuArguments({
      qemu,
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
    const consoleTail = () => `--- last lines of L1's console ---\n${console.tail()}`;
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
      const reason = console.failure ? `L1 init failed: ${console.failure}` : `L1 ended (QEMU ${how}) without the command's exit status`;
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

/** The harness's entry point: parse, run, and exit with the command's status. */
export async function main(argv = process.argv.slice(2)) {
  try {
    const options = parseArguments(argv);
    if (options === 'help') {
      process.stdout.write(usage());
      return 0;
    }
    return await runInL1(options);
  } catch (e) {
    if (!(e instanceof HarnessError)) throw e;
    log(e.message);
    if (e.detail) process.stderr.write(`${e.detail}\n`);
    return e.exitCode;
  }
}

process.exitCode = await main();
