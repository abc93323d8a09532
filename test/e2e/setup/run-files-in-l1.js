// @ts-check
/**
 * Runs the e2e suite inside the nested-KVM harness, one test file per L1 (scripts/e2e.sh
 * uses it on a host whose KVM cannot run real guests). A stalled L1 then costs one
 * file, not the suite: the harness's watchdog reports the stall (exit 123) and the
 * file runs once more in a fresh L1, which is printed and counted. A file whose tests
 * failed is never re-run. At the end, vitest-style summary lines over all files.
 *
 * usage: node test/e2e/setup/run-files-in-l1.js [FILTER...] [vitest options]
 *   FILTER: a substring of a test file's path (as vitest's own filters); none = all
 *   files under test/e2e ending in .test.ts, found anew on every run.
 * VMRUN_E2E_HARNESS_OPTIONS adds harness options (e.g. "--memory 6G").
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HARNESS_L1_CRASH_EXIT_CODE, HARNESS_STALL_EXIT_CODE } from '../../harness/harness-error.js';
import { e2eTestFiles } from './e2e-files.js';
import { HOST_KVM_IN_L1_VARIABLE, hostHasKvm, hostKvmTestFiles } from '../../harness/host-kvm-tests.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const VITEST = 'node_modules/.bin/vitest';
const HARNESS = 'test/harness/nested-kvm';
/** One file in one L1 takes 1-10 min here; 30 min means it is stuck, not slow. */
const FILE_TIMEOUT_S = 1800;
/** The host KVM tests run as one unit of many files (about 20), so their bound is longer. */
const HOST_KVM_UNIT_TIMEOUT_S = 3600;
/** No e2e test idles L1 this long; one that does waits for what will not come. */
const IDLE_TIMEOUT_S = 300;
/** Re-runs of a file whose L1 stalled; more would hide a stall that always happens. */
const STALL_RETRIES = 1;
/** vitest options whose value is the next argument (not a file filter). */
const OPTIONS_WITH_VALUE = new Set(['-t', '--testNamePattern', '--reporter', '--project', '--shard']);

/**
 * Splits the arguments into file filters and options for vitest.
 * @param {string[]} args
 */
export function splitArguments(args) {
  /** @type {string[]} */
  const filters = [];
  /** @type {string[]} */
  const options = [];
  for (let i = 0; i < args.length; i++) {
    const arg = /** @type {string} */ (args[i]);
    if (arg.startsWith('-')) {
      options.push(arg);
      if (OPTIONS_WITH_VALUE.has(arg) && i + 1 < args.length) options.push(/** @type {string} */ (args[++i]));
    } else filters.push(relative(REPO, join(process.cwd(), arg)) || arg);
  }
  return { filters, options };
}

/**
 * The counts a file's run produced (vitest's JSON report), or undefined without one.
 * @typedef {{ passed: number, failed: number, skipped: number }} TestCounts
 */

/**
 * One file's outcome: its harness exit status, its test counts, its time, and how
 * often its L1 stalled or crashed (each such run re-run, up to STALL_RETRIES in all).
 * @typedef {{ file: string, status: number, counts: TestCounts | undefined, seconds: number, stalls: number, crashes?: number }} FileOutcome
 */

/**
 * What runs in one L1: one e2e file, or all the host tests that need /dev/kvm together.
 * @typedef {{ name: string, config: string, files: string[], timeoutS: number }} L1Unit
 */

/**
 * Runs one unit in its own L1; returns the harness's exit status and the counts.
 * @param {L1Unit} unit
 * @param {string[]} vitestOptions
 * @param {string} reportDir
 * @returns {Promise<{ status: number, counts: TestCounts | undefined }>}
 */
async function runUnitOnce(unit, vitestOptions, reportDir) {
  const report = join(reportDir, `${unit.name.replace(/[^A-Za-z0-9.-]/g, '_')}.json`);
  rmSync(report, { force: true });
  const harnessOptions = (process.env.VMRUN_E2E_HARNESS_OPTIONS ?? '').split(/\s+/).filter(Boolean);
  const args = [
    '--private-tmp', '--timeout', String(unit.timeoutS), '--idle-timeout', String(IDLE_TIMEOUT_S), ...harnessOptions, '--',
    VITEST, 'run', '-c', unit.config, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`,
    ...vitestOptions, ...unit.files,
  ];
  const status = await new Promise((resolve) => {
    const child = spawn(join(REPO, HARNESS), args, { cwd: REPO, stdio: 'inherit' });
    currentHarness = child;
    child.on('error', () => resolve(125));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 125)));
  });
  currentHarness = undefined;
  return { status, counts: readCounts(report) };
}

/** @param {string} path @returns {TestCounts | undefined} */
function readCounts(path) {
  try {
    const r = JSON.parse(readFileSync(path, 'utf8'));
    return { passed: r.numPassedTests, failed: r.numFailedTests, skipped: r.numPendingTests + (r.numTodoTests ?? 0) };
  } catch {
    return undefined;
  }
}

/** The harness running now: a signal that ends this script ends it too (and with it, QEMU). */
/** @type {import('node:child_process').ChildProcess | undefined} */
let currentHarness;
for (const sig of /** @type {const} */ (['SIGTERM', 'SIGINT', 'SIGHUP'])) {
  process.on(sig, () => {
    currentHarness?.kill(sig);
    process.exit(128 + osConstants.signals[sig]);
  });
}

/**
 * Runs `file` through `runOnce`, again after its L1 stalled or its L1's own kernel
 * crashed (at most STALL_RETRIES times in all, each announced), never after a
 * failure: a failed assertion is the file's result.
 * @param {string} file
 * @param {() => Promise<{ status: number, counts: TestCounts | undefined }>} runOnce
 * @returns {Promise<FileOutcome>}
 */
export async function runFile(file, runOnce) {
  const started = performance.now();
  let stalls = 0;
  let crashes = 0;
  for (;;) {
    const reruns = stalls + crashes;
    say(`${file}: in its own L1${reruns ? ` (re-run ${reruns} of ${STALL_RETRIES} after its L1 ${crashes ? 'crashed' : 'stalled'})` : ''}`);
    const { status, counts } = await runOnce();
    const l1Failed = status === HARNESS_STALL_EXIT_CODE ? 'stalled' : status === HARNESS_L1_CRASH_EXIT_CODE ? 'crashed' : undefined;
    if (l1Failed && reruns < STALL_RETRIES) {
      if (l1Failed === 'stalled') stalls++;
      else crashes++;
      say(`RETRY ${file}: its L1 ${l1Failed} (exit ${status}, report above); running it once more in a fresh L1`);
      continue;
    }
    return { file, status, counts, seconds: (performance.now() - started) / 1000, stalls, crashes };
  }
}

/** @param {string} line */
function say(line) {
  process.stderr.write(`e2e: ${line}\n`);
}

/**
 * vitest-style closing lines over all files: one line per file, then Test Files,
 * Tests, Start at, Duration (plus the stalls, when there were any).
 * @param {FileOutcome[]} outcomes
 * @param {Date} startedAt
 * @param {number} seconds
 */
export function summary(outcomes, startedAt, seconds) {
  const sum = (/** @type {(o: FileOutcome) => number} */ f) => outcomes.reduce((n, o) => n + f(o), 0);
  const failedFiles = outcomes.filter((o) => o.status !== 0).length;
  const tests = {
    failed: sum((o) => o.counts?.failed ?? 0),
    passed: sum((o) => o.counts?.passed ?? 0),
    skipped: sum((o) => o.counts?.skipped ?? 0),
  };
  const parts = (/** @type {[string, number][]} */ counts) => counts.filter(([, n]) => n > 0).map(([what, n]) => `${n} ${what}`).join(' | ');
  const stalled = outcomes.filter((o) => o.stalls > 0);
  const crashed = outcomes.filter((o) => (o.crashes ?? 0) > 0);
  const lines = [
    '',
    ...outcomes.map((o) => {
      const mark = o.status === 0 ? '✓' : '×';
      const counts = o.counts ? parts([['failed', o.counts.failed], ['passed', o.counts.passed], ['skipped', o.counts.skipped]]) : `no results, harness exit ${o.status}`;
      const reruns = `${o.stalls ? ` [L1 stalled ${o.stalls}x, re-run]` : ''}${o.crashes ? ` [L1 crashed ${o.crashes}x, re-run]` : ''}`;
      return ` ${mark} ${o.file} (${counts || 'no tests'}) ${o.seconds.toFixed(1)}s${reruns}`;
    }),
    '',
    ...(stalled.length ? [`     Stalls  ${sum((o) => o.stalls)} (re-run: ${stalled.map((o) => o.file).join(', ')})`] : []),
    ...(crashed.length ? [`  L1 crashes  ${sum((o) => o.crashes ?? 0)} (re-run: ${crashed.map((o) => o.file).join(', ')})`] : []),
    ` Test Files  ${parts([['failed', failedFiles], ['passed', outcomes.length - failedFiles]])} (${outcomes.length})`,
    `      Tests  ${parts([['failed', tests.failed], ['passed', tests.passed], ['skipped', tests.skipped]]) || '0'} (${tests.failed + tests.passed + tests.skipped})`,
    `   Start at  ${startedAt.toTimeString().slice(0, 8)}`,
    `   Duration  ${seconds.toFixed(2)}s (each file in its own L1)`,
    '',
  ];
  return lines.join('\n');
}

async function main() {
  const { filters, options } = splitArguments(process.argv.slice(2));
  const pick = (/** @type {string[]} */ all) => (filters.length ? all.filter((f) => filters.some((filter) => f.includes(filter))) : all);
  // Without a /dev/kvm on the host, the host suite left out its KVM tests. They run here,
  // in one L1, on request: under emulation they take about as long as the e2e suite.
  const kvmFiles = hostHasKvm() ? [] : pick(hostKvmTestFiles());
  if (kvmFiles.length > 0 && process.env[HOST_KVM_IN_L1_VARIABLE] !== '1') {
    say(`${kvmFiles.length} host test files need /dev/kvm, which this host lacks: not run (${HOST_KVM_IN_L1_VARIABLE}=1 runs them in one L1)`);
    kvmFiles.length = 0;
  }
  /** @type {L1Unit[]} */
  const units = pick(e2eTestFiles()).map((file) => ({ name: file, config: 'vitest.e2e.config.ts', files: [file], timeoutS: FILE_TIMEOUT_S }));
  if (kvmFiles.length > 0) units.unshift({ name: `host KVM tests (${kvmFiles.length} files)`, config: 'vitest.config.ts', files: kvmFiles, timeoutS: HOST_KVM_UNIT_TIMEOUT_S });
  if (units.length === 0) {
    say(`no e2e test file matches ${filters.map((f) => JSON.stringify(f)).join(', ')} (files: ${e2eTestFiles().join(', ')})`);
    return 125;
  }
  const startedAt = new Date();
  const started = performance.now();
  const reportDir = mkdtempSync(join(tmpdir(), 'vmrun-e2e-reports-'));
  /** @type {FileOutcome[]} */
  const outcomes = [];
  try {
    for (const unit of units) outcomes.push(await runFile(unit.name, () => runUnitOnce(unit, options, reportDir)));
  } finally {
    rmSync(reportDir, { recursive: true, force: true });
  }
  process.stdout.write(summary(outcomes, startedAt, (performance.now() - started) / 1000));
  return outcomes.find((o) => o.status !== 0)?.status ?? 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main();
}
