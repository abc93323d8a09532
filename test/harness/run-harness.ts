/**
 * Test helper: runs the nested-KVM harness as a child process and collects its
 * output, so tests see exactly what a user or CI would.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The harness's executable, as users run it. */
export const HARNESS = fileURLToPath(new URL('./nested-kvm', import.meta.url));

/** The x86 L1's QEMU stager, run as a program (it prints the staged binary's path). */
export const X86_QEMU_CLI = fileURLToPath(new URL('./x86-qemu.js', import.meta.url));

/** What a harness run printed and how it ended. */
export interface HarnessRun {
  status: number | null;
  stdout: string;
  stderr: string;
  elapsedMs: number;
}

/** Runs `file args` to completion (killed after `timeoutMs`) and returns its output. */
export function runHarness(
  file: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<HarnessRun> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, elapsedMs: performance.now() - started });
    });
  });
}
