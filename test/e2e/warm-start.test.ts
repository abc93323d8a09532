/**
 * Warm starts end to end with a real Linux guest: the first `vmrun run` of an image
 * boots and saves a template, later runs restore it (VMRUN_TRACE=1 says which), each
 * clone draws its own random bytes and hostname, a warm run behaves as a cold one
 * (--cold) for exit code, env, workdir, user and stdin, and a changed kernel makes a
 * new template.
 * Run: scripts/e2e.sh test/e2e/warm-start.test.ts
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryUnavailableReason, startRegistry, type LoopbackRegistry } from '../helpers/registry.js';
import { busyboxUnavailableReason, writeBusyboxLayout } from './helpers/busybox-image.js';
import { VmrunTestEnv } from './helpers/vmrun-env.js';

const RUN_TIMEOUT_MS = 180_000;
const skipReason = registryUnavailableReason() ?? busyboxUnavailableReason();
if (skipReason) console.warn(`warm-start e2e skipped: ${skipReason}`);

let env: VmrunTestEnv;
let registry: LoopbackRegistry;
let layouts: string;
let image: string;

beforeAll(async () => {
  if (skipReason) return;
  env = new VmrunTestEnv();
  layouts = mkdtempSync(join(tmpdir(), 'vmrun-e2e-warm-'));
  await writeBusyboxLayout(join(layouts, 'plain'), 'v1', { applets: ['hostname', 'head', 'od', 'tr'] });
  registry = await startRegistry();
  await registry.push(join(layouts, 'plain'), 'v1', 'e2e/warm');
  image = `${registry.host}/e2e/warm:v1`;
}, 5 * 60_000);

afterAll(async () => {
  env?.cleanup();
  await registry?.stop();
  if (layouts) rmSync(layouts, { recursive: true, force: true });
});

/** `vmrun run` with the start-up trace on; returns the result and how the guest started. */
async function tracedRun(args: string[], opts: { input?: string; kernel?: string } = {}) {
  const r = await env.run(['run', '-q', ...args], {
    env: { VMRUN_TRACE: '1', ...(opts.kernel ? { VMRUN_KERNEL: opts.kernel } : {}) },
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    timeoutMs: RUN_TIMEOUT_MS,
  });
  const start = /^vmrun: trace: start: (.*)$/m.exec(r.stderr)?.[1] ?? '';
  const workloadErr = r.stderr.split('\n').filter((l) => l && !l.startsWith('vmrun: trace:')).join('\n');
  console.log(`${args.join(' ').slice(0, 60)}: ${start}\n${r.stderr.split('\n').filter((l) => l.startsWith('vmrun: trace:')).join('\n')}`);
  return { ...r, start, workloadErr };
}

const RANDOM_AND_NAME = 'echo "$RANDOM-$(cat /proc/sys/kernel/random/uuid)"; hostname; head -c 16 /dev/urandom | od -An -tx1 | tr -d " \\n"; echo';
/** Probes docker's rules and stdin: the same command cold and warm must print the same. */
const PROBE = ['-i', '-e', 'PROBE=1', '-w', '/tmp/wd', '-u', '1234:2345'];
const PROBE_SCRIPT = 'cat; echo "env=$PROBE cwd=$(pwd) ids=$(id -u):$(id -g) home=$HOME"; echo to-stderr >&2; exit 9';

describe.skipIf(skipReason !== undefined)('warm starts from a booted template', () => {
  const outputs: string[] = [];

  it('the first run boots and saves the template; later runs restore it and draw their own random bytes', async () => {
    const first = await tracedRun([image, 'sh', '-c', RANDOM_AND_NAME]);
    expect(first.status, first.stderr).toBe(0);
    expect(first.start).toMatch(/^booted; saved template [0-9a-f]{12}$/);
    outputs.push(first.stdout);
    for (let i = 0; i < 2; i++) {
      const warm = await tracedRun([image, 'sh', '-c', RANDOM_AND_NAME]);
      expect(warm.status, warm.stderr).toBe(0);
      expect(warm.start).toMatch(/^restored template [0-9a-f]{12}$/);
      outputs.push(warm.stdout);
    }
    // Three runs, three different random lines, uuids, urandom bytes and (default, random) hostnames.
    for (let line = 0; line < 3; line++) {
      const values = outputs.map((o) => o.split('\n')[line]);
      expect(new Set(values).size, `line ${line}: ${values.join(' | ')}`).toBe(3);
    }
    const list = JSON.parse((await env.run(['template', 'ls', '--json'])).stdout) as { key: string; image: string }[];
    expect(list).toHaveLength(1);
    expect(list[0]!.image).toBe(image);
  });

  it('a warm run behaves as a cold one: exit code, env, workdir, user, stdin, stderr apart', async () => {
    const warm = await tracedRun([...PROBE, image, 'sh', '-c', PROBE_SCRIPT], { input: 'from stdin\n' });
    const cold = await tracedRun(['--cold', ...PROBE, image, 'sh', '-c', PROBE_SCRIPT], { input: 'from stdin\n' });
    expect(warm.start).toMatch(/^restored template/);
    expect(cold.start).toBe('booted (no template: --cold)');
    expect(cold.stdout).toBe('from stdin\nenv=1 cwd=/tmp/wd ids=1234:2345 home=/\n');
    expect(warm.stdout).toBe(cold.stdout);
    expect([warm.status, warm.workloadErr]).toEqual([9, 'to-stderr']);
    expect([cold.status, cold.workloadErr]).toEqual([9, 'to-stderr']);
    // A name given with --hostname is the clone's.
    const named = await tracedRun(['--hostname', 'clone-a', image, 'hostname']);
    expect([named.start.startsWith('restored'), named.status, named.stdout]).toEqual([true, 0, 'clone-a\n']);
  });

  it('a changed kernel makes a new template; template rm --all empties the list', async () => {
    const dir = mkdtempSync(join(env.root, 'kernel-'));
    const kernel = join(dir, 'bzImage');
    copyFileSync(env.kernel, kernel);
    const r = await tracedRun([image, 'true'], { kernel });
    expect(r.status, r.stderr).toBe(0);
    expect(r.start).toMatch(/^booted; saved template/);
    expect(JSON.parse((await env.run(['template', 'ls', '--json'])).stdout)).toHaveLength(2);
    expect((await env.run(['template', 'rm', '--all'])).status).toBe(0);
    expect(JSON.parse((await env.run(['template', 'ls', '--json'])).stdout)).toEqual([]);
  });
});
