/**
 * `vmrun run IMAGE [CMD...]` end to end with a real Linux guest: images pushed to a
 * real registry (docker-registry on loopback, started here), pulled by vmrun itself
 * into a private store, booted with vmrun's guest kernel and vmrun-init.
 * Run: scripts/e2e.sh test/e2e/run.test.ts
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { registryUnavailableReason, startRegistry, type LoopbackRegistry } from '../helpers/registry.js';
import type { ConfigSpec } from '../oci/image-builder.js';
import { busyboxUnavailableReason, parsePasswd, passwdText, writeBusyboxLayout, type PasswdEntry } from './helpers/busybox-image.js';
import { PRINT_SIZE_PER_LINE, resizeSeenByGuest, underPty } from './helpers/pty.js';
import { processesWhere, VmrunTestEnv } from './helpers/vmrun-env.js';

/** One `vmrun run` in L1 takes ~15-20 s (Node's start under TCG, then a native guest boot). */
const RUN_TIMEOUT_MS = 150_000;

const skipReason = registryUnavailableReason() ?? busyboxUnavailableReason();
if (skipReason) console.warn(`vmrun run e2e skipped: ${skipReason}`);

let env: VmrunTestEnv;
let registry: LoopbackRegistry;
let layouts: string;
/** A busybox image without config (plus a payload file): tests 1, 3, 4, 5. */
let plainImage: string;
/** The busybox image with every run-relevant config field set: test 2. */
let configuredImage: string;

// The configured image: docker's rules are checked against these values, never against
// literals in the assertions.
const users: PasswdEntry[] = [
  { name: 'app', uid: 1234, gid: 2345, home: '/home/app' },
  { name: 'other', uid: 4321, gid: 5432, home: '/var/other' },
];
const imageConfig = {
  Entrypoint: ['/app/show', 'from-entrypoint'],
  Cmd: ['from-cmd', 'two words'],
  Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'GREETING=hello from the image', 'IMAGE_ONLY=kept from the image'],
  WorkingDir: '/srv/work',
  User: 'app',
} satisfies ConfigSpec;
const SHOWN_VARIABLES = ['GREETING', 'IMAGE_ONLY', 'FROM_HOST', 'FROM_FILE', 'HOME'] as const;
/** Prints what the workload got: argv, cwd, ids and the variables the tests look at. */
const SHOW_SCRIPT = `#!/bin/sh
printf 'argv:'; for a in "$0" "$@"; do printf ' [%s]' "$a"; done; echo
echo "cwd=$(pwd)"
echo "ids=$(id -u):$(id -g)"
for k in ${SHOWN_VARIABLES.join(' ')}; do eval "v=\\\${$k-<unset>}"; echo "env $k=$v"; done
`;

beforeAll(async () => {
  if (skipReason) return;
  env = new VmrunTestEnv();
  layouts = mkdtempSync(join(tmpdir(), 'vmrun-e2e-layouts-'));
  // The payload makes the first run's pull and initramfs build take seconds more than
  // the second run's cache hit, well above the noise of one run on a loaded machine.
  await writeBusyboxLayout(join(layouts, 'plain'), 'v1', { payloadBytes: 24 << 20 });
  await writeBusyboxLayout(join(layouts, 'configured'), 'v1', {
    config: imageConfig,
    users,
    files: [{ path: 'app/show', content: SHOW_SCRIPT, mode: 0o755 }],
  });
  registry = await startRegistry();
  await registry.push(join(layouts, 'plain'), 'v1', 'e2e/busybox');
  await registry.push(join(layouts, 'configured'), 'v1', 'e2e/configured');
  plainImage = `${registry.host}/e2e/busybox:v1`;
  configuredImage = `${registry.host}/e2e/configured:v1`;
}, 5 * 60_000);

afterAll(async () => {
  env?.cleanup();
  await registry?.stop();
  if (layouts) rmSync(layouts, { recursive: true, force: true });
});

/** The image archives in this environment's initramfs cache, with their identity. */
function cachedInitramfs(): { name: string; ino: number; mtimeMs: number }[] {
  const dir = join(env.cache, 'initramfs');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpio'))
    .map((name) => {
      const st = statSync(join(dir, name));
      return { name, ino: st.ino, mtimeMs: st.mtimeMs };
    });
}

/** What the configured image's /app/show printed. */
interface Shown {
  argv: string[];
  cwd: string;
  ids: string;
  env: Record<(typeof SHOWN_VARIABLES)[number], string>;
}

function parseShown(stdout: string): Shown {
  const argvLine = /^argv:(.*)$/m.exec(stdout)?.[1];
  if (argvLine === undefined) throw new Error(`no argv line in the workload's output:\n${stdout}`);
  const value = (re: RegExp) => re.exec(stdout)?.[1];
  return {
    argv: [...argvLine.matchAll(/ \[([^\]]*)\]/g)].map((m) => m[1]!),
    cwd: value(/^cwd=(.*)$/m) ?? '',
    ids: value(/^ids=(.*)$/m) ?? '',
    env: Object.fromEntries(SHOWN_VARIABLES.map((k) => [k, value(new RegExp(`^env ${k}=(.*)$`, 'm')) ?? '<missing>'])) as Shown['env'],
  };
}

/** The value of KEY in a docker-style KEY=VAL list. */
const envValue = (list: readonly string[], key: string) => list.find((kv) => kv.startsWith(`${key}=`))?.slice(key.length + 1);
/** The image's passwd entry for a user name or uid, as the guest's init resolves it. */
const passwdEntry = (nameOrUid: string) => {
  const entry = parsePasswd(passwdText(users)).find((u) => u.name === nameOrUid || String(u.uid) === nameOrUid);
  if (!entry) throw new Error(`test setup: no user ${nameOrUid} in the image's /etc/passwd`);
  return entry;
};

describe.skipIf(skipReason !== undefined)('vmrun run with a real Linux guest', () => {
  // Set by the first run, compared by the second-run test below.
  let firstRun: { ms: number; cache: ReturnType<typeof cachedInitramfs> } | undefined;

  it('pulls a pushed image, prints the workload\'s output and exits with its status', async () => {
    const started = performance.now();
    const r = await env.run(['run', '-q', plainImage, 'sh', '-c', 'echo hi; exit 3'], { timeoutMs: RUN_TIMEOUT_MS });
    const ms = performance.now() - started;
    console.log(`first run (pull + initramfs build + boot): ${(ms / 1000).toFixed(1)} s`);
    expect(r.stdout, r.stderr).toBe('hi\n');
    expect(r.status).toBe(3);
    firstRun = { ms, cache: cachedInitramfs() };
    expect(firstRun.cache).toHaveLength(1);
  });

  it('a second run of the same image reuses the cached initramfs and is faster', async () => {
    if (!firstRun) throw new Error('needs the first run of the plain image (the test above) to have passed');
    const started = performance.now();
    const r = await env.run(['run', '-q', plainImage, 'sh', '-c', 'echo again'], { timeoutMs: RUN_TIMEOUT_MS });
    const ms = performance.now() - started;
    console.log(`second run: ${(ms / 1000).toFixed(1)} s (first ${(firstRun.ms / 1000).toFixed(1)} s)`);
    expect(r.stdout, r.stderr).toBe('again\n');
    expect(r.status).toBe(0);
    // Same file, same inode, not rewritten.
    expect(cachedInitramfs()).toEqual(firstRun.cache);
    expect(ms).toBeLessThan(firstRun.ms);
  });

  describe('docker\'s rules for the image config', () => {
    const { Entrypoint, Cmd, Env, WorkingDir, User } = imageConfig;

    it('a default run uses Entrypoint + Cmd, Env, WorkingDir and User (with its home)', async () => {
      const r = await env.run(['run', '-q', configuredImage], { timeoutMs: RUN_TIMEOUT_MS });
      expect(r.status, r.stderr).toBe(0);
      const user = passwdEntry(User);
      expect(parseShown(r.stdout)).toEqual({
        argv: [...Entrypoint, ...Cmd],
        cwd: WorkingDir,
        ids: `${user.uid}:${user.gid}`,
        env: { GREETING: envValue(Env, 'GREETING'), IMAGE_ONLY: envValue(Env, 'IMAGE_ONLY'), FROM_HOST: '<unset>', FROM_FILE: '<unset>', HOME: user.home },
      });
    });

    it('CMD args replace Cmd; -e overrides Env, -e KEY takes the host\'s value, --env-file adds; -w; -u name', async () => {
      const envFile = join(env.root, 'vars.env');
      writeFileSync(envFile, '# a comment line\nFROM_FILE=from the env file\nGREETING=from the env file\n');
      const hostValue = `host value ${randomBytes(3).toString('hex')}`;
      const user = passwdEntry(users.find((u) => u.name !== User)!.name);
      const workdir = '/srv/elsewhere/deeper';
      const args = ['given', 'two words'];
      const r = await env.run(
        ['run', '-q', '-e', 'GREETING=from the command line', '-e', 'FROM_HOST', '--env-file', envFile, '-w', workdir, '-u', user.name, configuredImage, ...args],
        { env: { FROM_HOST: hostValue }, timeoutMs: RUN_TIMEOUT_MS },
      );
      expect(r.status, r.stderr).toBe(0);
      expect(parseShown(r.stdout)).toEqual({
        argv: [...Entrypoint, ...args],
        cwd: workdir,
        ids: `${user.uid}:${user.gid}`,
        // -e is applied after --env-file (docker's order), so it wins for GREETING.
        env: { GREETING: 'from the command line', IMAGE_ONLY: envValue(Env, 'IMAGE_ONLY'), FROM_HOST: hostValue, FROM_FILE: 'from the env file', HOME: user.home },
      });
    });

    it('--entrypoint replaces Entrypoint and drops Cmd; -u uid:gid sets both ids (home from the uid\'s entry)', async () => {
      const user = passwdEntry(User);
      const gid = user.gid + 17;
      const r = await env.run(['run', '-q', '--entrypoint', '/app/show', '-u', `${user.uid}:${gid}`, configuredImage], { timeoutMs: RUN_TIMEOUT_MS });
      expect(r.status, r.stderr).toBe(0);
      const shown = parseShown(r.stdout);
      expect(shown.argv).toEqual(['/app/show']);
      expect(shown.cwd).toBe(WorkingDir);
      expect(shown.ids).toBe(`${user.uid}:${gid}`);
      expect(shown.env.HOME).toBe(user.home);
      expect(shown.env.GREETING).toBe(envValue(Env, 'GREETING'));
    });
  });

  it('keeps the workload\'s stdout and stderr apart, and piped stdin ends with EOF', async () => {
    const script = 'cat; echo err >&2; head -c 300000 /dev/zero | tr "\\0" x; exit 4';
    const r = await env.run(['run', '-q', '-i', plainImage, 'sh', '-c', script], { input: 'hi\n', timeoutMs: RUN_TIMEOUT_MS });
    expect(r.stderr).toBe('err\n');
    expect(r.stdout.slice(0, 3)).toBe('hi\n');
    expect(r.stdout.slice(3)).toBe('x'.repeat(300000));
    expect(r.status).toBe(4);
  });

  it('-it follows the terminal\'s size (SIGWINCH), as stty size in the guest shows', async () => {
    const work = mkdtempSync(join(tmpdir(), 'vmrun-e2e-resize-'));
    const vmrunArgv = [process.execPath, join(REPO, 'bin', 'run.js'), 'run', '-q', '-it', plainImage, 'sh', '-c', PRINT_SIZE_PER_LINE];
    expect(await resizeSeenByGuest(env, vmrunArgv, work, RUN_TIMEOUT_MS)).toBe(0);
    rmSync(work, { recursive: true, force: true });
  }, 600_000);

  it('-it gives an interactive shell on a terminal', async () => {
    const shell = env.start([], { command: underPty([process.execPath, join(REPO, 'bin', 'run.js'), 'run', '-q', '-it', plainImage, 'sh']) });
    // Type only once the shell prompts: the guest's UART drops input that arrives
    // before its driver starts. (busybox then asks for the cursor position, ESC [6n,
    // and goes on without an answer.)
    await shell.waitFor(/\/ # /, RUN_TIMEOUT_MS);
    shell.child.stdin!.write('echo $((6*7)); exit 5\r');
    expect(await shell.waitExit(60_000)).toBe(5);
    // The answer on a line of its own (the echoed command line holds only "6*7"); Node's
    // raw mode keeps ONLCR on the host terminal, so the guest's \r\n arrives as \r\r\n.
    expect(shell.stdout).toMatch(/\n42\r*\n/);
  });

  it('SIGINT stops the guest: vmrun exits 130 and leaves no process behind', async () => {
    const marker = `ready-${randomBytes(4).toString('hex')}`;
    const run = env.start(['run', '-q', plainImage, 'sh', '-c', `echo ${marker}; sleep 600`]);
    await run.waitFor(new RegExp(marker), RUN_TIMEOUT_MS);
    const signalled = performance.now();
    run.child.kill('SIGINT');
    expect(await run.waitExit(30_000)).toBe(130);
    console.log(`SIGINT to exit: ${((performance.now() - signalled) / 1000).toFixed(2)} s`);
    expect(run.stderr).not.toMatch(/Error|\n\s+at /);
    expect(processesWhere((argv) => argv.some((a) => a.includes(marker)))).toEqual([]);
  });
});
