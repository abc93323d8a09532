import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HOST_SLOWDOWN, REPO, vmrun, type CliResult } from '../helpers/cli.js';

/**
 * A private runtime directory for one test file's background VMs, and the cleanup
 * that kills every host process started in it (found by its command line, so even a
 * host whose record was never written is not left running).
 */
export class VmTestEnv {
  readonly runtimeDir = mkdtempSync(join(tmpdir(), 'vmrt-'));
  readonly env = { VMRUN_RUNTIME_DIR: this.runtimeDir };
  private readonly children = new Set<ChildProcess>();

  /** Runs a vmrun command to completion (bounded). */
  run(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
    return vmrun(args, { ...opts, env: this.env });
  }

  /** Starts a long-running vmrun command (logs -f, attach) whose output the test watches. */
  start(args: string[], command = process.execPath, prefix: string[] = [join(REPO, 'bin', 'run.js')]): LiveCommand {
    const child = spawn(command, [...prefix, ...args], { cwd: REPO, env: { ...process.env, ...this.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.add(child);
    return new LiveCommand(child);
  }

  /** Pids of host processes serving this runtime directory. */
  hostPids(): number[] {
    const pids: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
        if (argv.some((a) => a.endsWith('host-main.js')) && argv.includes(this.runtimeDir)) pids.push(Number(entry));
      } catch {
        // The process ended while we looked.
      }
    }
    return pids;
  }

  /** Kills everything this test file started and removes the runtime directory. */
  cleanup(): void {
    for (const child of this.children) if (child.exitCode === null) child.kill('SIGKILL');
    for (const pid of this.hostPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    rmSync(this.runtimeDir, { recursive: true, force: true });
  }
}

/** A running command with its output so far and bounded waits on it. */
export class LiveCommand {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  /** The exit status once the command has ended (null after a signal); undefined while it runs. */
  exitStatus: number | null | undefined;

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((r) => child.on('close', (code) => r((this.exitStatus = code))));
  }

  /**
   * `check` for `eventually`, failing as soon as the command has ended without it
   * holding: what a running command was to do will not happen any more, and its
   * output (the caller's to print) says why, a crashed guest say, better than a timeout.
   */
  whileRunning<T>(check: () => Promise<T | undefined>): () => Promise<T | undefined> {
    return async () => {
      const value = await check();
      if (value !== undefined || this.exitStatus === undefined) return value;
      throw new Error(`the command ended first (exit status ${this.exitStatus})`);
    };
  }

  /** Waits until stdout matches `re` (bounded). */
  async waitFor(re: RegExp, timeoutMs = 30_000 * HOST_SLOWDOWN): Promise<RegExpExecArray> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const m = re.exec(this.stdout);
      if (m) return m;
      await sleep(50);
    }
    throw new Error(`no ${re} within ${timeoutMs} ms; stdout: ${this.stdout.slice(-500)}\nstderr: ${this.stderr}`);
  }

  /** Waits for the command to end (bounded) and returns its exit status. */
  async waitExit(timeoutMs = 30_000 * HOST_SLOWDOWN): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`command did not exit within ${timeoutMs} ms; stdout: ${this.stdout.slice(-500)}\nstderr: ${this.stderr}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Per-test bound for tests that run several vmrun commands: every guest instruction
 * is emulated on this host, so parallel test files slow each other down a lot.
 */
export const MULTI_STEP_TEST_TIMEOUT_MS = 180_000 * HOST_SLOWDOWN;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value other than undefined (bounded). */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 30_000 * HOST_SLOWDOWN): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}
