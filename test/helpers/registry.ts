/**
 * A real Distribution registry (Debian's docker-registry) on a free loopback port,
 * with storage in a temp dir, optionally behind htpasswd (bcrypt) basic auth, and a
 * skopeo-based push helper. Reusable by any suite that needs images in a registry.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where the registry binary lives (Debian's docker-registry package). */
export const REGISTRY_BINARY = '/usr/bin/docker-registry';

/** A running loopback registry. */
export interface LoopbackRegistry {
  /** host:port, e.g. 127.0.0.1:40123 */
  host: string;
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  /** Temp dir holding config, storage and logs. */
  dir: string;
  auth?: { username: string; password: string };
  /** Pushes `oci:layoutDir:tag` to `repository:destTag` with skopeo (`all` copies every platform of an index). */
  push(layoutDir: string, tag: string, repository: string, destTag?: string, opts?: { all?: boolean }): Promise<void>;
  /** Registry log so far (for failure messages). */
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** Why the registry cannot run here, or undefined if it can (tests print this instead of silently skipping). */
export function registryUnavailableReason(): string | undefined {
  if (!existsSync(REGISTRY_BINARY)) return `${REGISTRY_BINARY} is missing (apt-get install docker-registry)`;
  if (!existsSync('/usr/bin/skopeo')) return 'skopeo is missing (apt-get install skopeo)';
  return undefined;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts docker-registry on a free loopback port; waits (bounded) until it answers /v2/. */
export async function startRegistry(opts: { auth?: { username: string; password: string } } = {}): Promise<LoopbackRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'vmrun-registry-'));
  let child: ChildProcess | undefined;
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freeLoopbackPort();
    const authYaml = opts.auth
      ? `auth:\n  htpasswd:\n    realm: vmrun-test\n    path: ${join(dir, 'htpasswd')}\n`
      : '';
    if (opts.auth) {
      const { stdout } = await run('htpasswd', ['-Bbn', opts.auth.username, opts.auth.password]);
      await writeFile(join(dir, 'htpasswd'), stdout);
    }
    await writeFile(
      join(dir, 'config.yml'),
      `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${authYaml}`,
    );
    const logPath = join(dir, 'registry.log');
    const { openSync } = await import('node:fs');
    const logFd = openSync(logPath, 'a');
    child = spawn(REGISTRY_BINARY, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', logFd, logFd] });
    const host = `127.0.0.1:${port}`;
    const ready = await waitReady(`http://${host}/v2/`, child, 10_000);
    if (ready) {
      const proc = child;
      return {
        host,
        url: `http://${host}`,
        dir,
        ...(opts.auth ? { auth: opts.auth } : {}),
        push: async (layoutDir, tag, repository, destTag = tag, pushOpts = {}) => {
          const args = ['copy', '--insecure-policy', '--quiet', '--dest-tls-verify=false'];
          if (pushOpts.all) args.push('--all');
          if (opts.auth) args.push('--dest-creds', `${opts.auth.username}:${opts.auth.password}`);
          args.push(`oci:${layoutDir}:${tag}`, `docker://${host}/${repository}:${destTag}`);
          await run('skopeo', args, { timeout: 60_000 });
        },
        log: () => readFile(logPath, 'utf8').catch(() => ''),
        stop: async () => {
          await stopChild(proc);
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    lastError = await readFile(logPath, 'utf8').catch(() => '');
    await stopChild(child);
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`docker-registry did not start on loopback: ${lastError.slice(-2000)}`);
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200 || res.status === 401) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
