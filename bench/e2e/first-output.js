// Times a process from its spawn to the first byte on its stdout (a guest's first
// console output, for vmrun and QEMU alike), then lets it finish or ends it.
import { spawn } from 'node:child_process';

/**
 * Spawns `argv` and resolves once it has printed `until` (or ended, when `until` is
 * not given): { firstOutputMs, untilMs, totalMs, stdout, stderr, status }, `untilMs`
 * when `until` first matched the output. With `stop`, the process is sent that signal
 * once `until` has appeared. Rejects after `timeoutMs`.
 * @param {string[]} argv
 * @param {{ env?: NodeJS.ProcessEnv, until?: RegExp, stop?: NodeJS.Signals, timeoutMs: number }} opts
 */
export function timeFirstOutput(argv, opts) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const elapsedMs = () => Number(process.hrtime.bigint() - started) / 1e6;
    const child = spawn(argv[0], argv.slice(1), { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let firstOutputMs;
    let untilMs;
    let stdout = '';
    let stderr = '';
    let stopped = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${argv.join(' ')}: no ${opts.until ?? 'exit'} within ${opts.timeoutMs} ms\nstdout: ${stdout.slice(-500)}\nstderr: ${stderr.slice(-2000)}`));
    }, opts.timeoutMs);
    child.stdout.on('data', (d) => {
      firstOutputMs ??= elapsedMs();
      stdout += d.toString('latin1');
      if (untilMs === undefined && opts.until?.test(stdout)) untilMs = elapsedMs();
      if (opts.stop && !stopped && untilMs !== undefined) {
        stopped = true;
        child.kill(opts.stop);
      }
    });
    child.stderr.on('data', (d) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      if (firstOutputMs === undefined || (opts.until && !opts.until.test(stdout))) {
        reject(new Error(`${argv.join(' ')} ended (status ${status ?? signal}) without printing ${opts.until ?? 'anything'}\nstdout: ${stdout.slice(-500)}\nstderr: ${stderr.slice(-2000)}`));
        return;
      }
      resolve({ firstOutputMs, untilMs, totalMs: elapsedMs(), stdout, stderr, status });
    });
  });
}
