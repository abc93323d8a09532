import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The repository root (tests run the real CLI from it). */
export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const GUESTS = join(REPO, 'fixtures', 'guests', 'out');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * How much slower host code runs here, and how long one CLI run may take by default. Inside the nested-KVM L1 (hosts with no
 * /dev/kvm run the KVM tests there) host code is emulated: Node alone takes seconds to
 * start, and a background VM's host process up to 30 s to report.
 */
export const HOST_SLOWDOWN = process.env.VMRUN_NESTED_L1 === '1' ? 6 : 1;
export const CLI_TIMEOUT_MS = 30_000 * HOST_SLOWDOWN;

/** Runs `vmrun ARGS` (bin/run.js) to completion, with a bound on its run time. */
export function vmrun(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO, 'bin', 'run.js'), ...args], {
      cwd: REPO,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vmrun ${args.join(' ')} did not finish within ${opts.timeoutMs ?? CLI_TIMEOUT_MS} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? CLI_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Lines of a guest's output that start with `prefix` ("e820:" -> the rest of each line). */
export function linesWith(output: string, prefix: string): string[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length).trim());
}
