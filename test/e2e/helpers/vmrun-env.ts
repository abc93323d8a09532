/**
 * A private vmrun installation for one e2e test file: its own image store and
 * snapshots (VMRUN_HOME), initramfs cache (VMRUN_CACHE) and background-VM registry
 * (VMRUN_RUNTIME_DIR), all under one temp directory, with the guest kernel the suite
 * already built. Inside the nested-KVM harness the temp directory is in L1's own
 * /run (XDG_RUNTIME_DIR): control sockets cannot live on the host's 9p paths, and a
 * tmpfs there is faster than 9p for the store.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { REPO, vmrun, type CliResult } from '../../helpers/cli.js';
import { LiveCommand } from '../../vmhost/vm-env.js';
import { findGuestKernel } from '../../../src/run/guest-kernel.js';
import { trackRuntimeDir, untrackRuntimeDir } from './vm-report.js';

/** Where a test file's private vmrun state goes: L1's tmpfs runtime dir when there is one. */
function stateParent(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  if (runtime && isAbsolute(runtime) && existsSync(runtime)) return runtime;
  return tmpdir();
}

/** One test file's vmrun: environment, CLI runs, live commands, and a cleanup that leaves nothing running. */
export class VmrunTestEnv {
  readonly root = mkdtempSync(join(stateParent(), 'vmrun-e2e-'));
  readonly home = join(this.root, 'home');
  readonly cache = join(this.root, 'cache');
  readonly runtimeDir = join(this.root, 'runtime');
  /** The guest kernel every run boots (the one guest/kernel/build.sh cached, or VMRUN_KERNEL). */
  readonly kernel = findGuestKernel();
  readonly env: NodeJS.ProcessEnv = {
    VMRUN_HOME: this.home,
    VMRUN_CACHE: this.cache,
    VMRUN_RUNTIME_DIR: this.runtimeDir,
    VMRUN_KERNEL: this.kernel,
  };
  private readonly live = new Set<LiveCommand>();

  constructor() {
    // vmrun refuses a runtime dir other users could open.
    mkdirSync(this.runtimeDir, { mode: 0o700 });
    chmodSync(this.runtimeDir, 0o700);
    trackRuntimeDir(this.runtimeDir);
  }

  /** Runs `vmrun ARGS` to completion (bounded), with this environment plus `env`. */
  run(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
    return vmrun(args, { ...opts, env: { ...this.env, ...opts.env } });
  }

  /** Starts `vmrun ARGS` (or `command` when given) and returns it running, with its output watched. */
  start(args: string[], opts: { command?: string[] } = {}): LiveCommand {
    const argv = opts.command ?? [process.execPath, join(REPO, 'bin', 'run.js'), ...args];
    const child = spawn(argv[0]!, argv.slice(1), { cwd: REPO, env: { ...process.env, ...this.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const command = new LiveCommand(child);
    this.live.add(command);
    return command;
  }

  /** Pids of background-VM host processes serving this environment's registry. */
  hostPids(): number[] {
    return processesWhere((argv) => argv.some((a) => a.endsWith('host-main.js')) && argv.includes(this.runtimeDir));
  }

  /** Kills what this environment started (commands and VM hosts) and removes its files. */
  cleanup(): void {
    for (const c of this.live) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    for (const pid of this.hostPids()) killQuietly(pid);
    untrackRuntimeDir(this.runtimeDir);
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Pids of this machine's processes whose argv satisfies `match` (read from /proc). */
export function processesWhere(match: (argv: string[]) => boolean): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (match(argv)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
