/**
 * Forking a real Linux guest through the CLI: a `vmrun run -d` VM is saved and
 * restored three times at once with `vmrun snapshot restore --count` (the library test
 * test/snapshot/fork.test.ts restores 20 clones of a small guest; three real Linux
 * clones keep this file's L1 time down). The clones appear in `vmrun ps` with where
 * they came from, their identity and their memory; `vmrun exec` reaches each; each
 * guest draws its own random bytes and has the clone's MAC and hostname.
 * Run: scripts/e2e.sh test/e2e/fork.test.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxUnavailableReason, writeBusyboxLayout } from './helpers/busybox-image.js';
import { VmrunTestEnv } from './helpers/vmrun-env.js';

/** A vmrun command in L1 takes 5-20 s (Node's start under TCG); three restores at once more. */
const COMMAND_TIMEOUT_MS = 240_000;
const CLONES = 3;

const skipReason = busyboxUnavailableReason();
if (skipReason) console.warn(`fork e2e skipped: ${skipReason}`);

let env: VmrunTestEnv;
let layout: string;

beforeAll(async () => {
  if (skipReason) return;
  env = new VmrunTestEnv();
  layout = mkdtempSync(join(tmpdir(), 'vmrun-e2e-fork-layout-'));
  await writeBusyboxLayout(layout, 'v1');
}, 60_000);

afterAll(() => {
  env?.cleanup();
  if (layout) rmSync(layout, { recursive: true, force: true });
});

interface PsEntry {
  id: string;
  name?: string;
  status: string;
  snapshot?: string;
  identity?: { mac?: string; vsockCid?: number; hostname?: string };
  memory?: { anonymousBytes: number; pssBytes: number; rssBytes: number };
}

describe.skipIf(skipReason !== undefined)('snapshot restore --count of a Linux VM', () => {
  it('starts the clones at once; ps lists them; each is reachable and has its own randomness, MAC and hostname', async () => {
    const started = await env.run(['run', '-d', '-q', '--name', 'base', `oci:${layout}:v1`, 'sh', '-c', 'while :; do sleep 1; done'], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(started.status, started.stderr).toBe(0);
    // The agent answers once the guest is up: save then, so the clones wake with it running.
    const ready = await env.run(['exec', 'base', 'true'], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(ready.status, ready.stderr).toBe(0);
    const saved = await env.run(['snapshot', 'save', 'base', '-o', 'base', '--stop'], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(saved.status, saved.stderr).toBe(0);

    const t0 = Date.now();
    const forked = await env.run(['snapshot', 'restore', 'base', '--count', String(CLONES), '--name', 'c'], { timeoutMs: COMMAND_TIMEOUT_MS });
    console.log(`snapshot restore --count ${CLONES}: ${Date.now() - t0} ms`);
    expect(forked.status, forked.stderr).toBe(0);
    const ids = forked.stdout.trim().split('\n');
    expect(ids).toHaveLength(CLONES);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{12}$/);

    const ps = await env.run(['ps', '--json'], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(ps.status, ps.stderr).toBe(0);
    const clones = (JSON.parse(ps.stdout) as PsEntry[]).filter((e) => ids.includes(e.id));
    expect(clones.map((c) => c.name).sort()).toEqual(['c-1', 'c-2', 'c-3']);
    for (const c of clones) {
      expect(c.status).toBe('running');
      expect(c.snapshot).toBe(join(env.home, 'snapshots', 'base.vmsnap'));
      expect(c.identity?.hostname).toBe(c.name);
      expect(c.memory?.anonymousBytes).toBeGreaterThan(0);
      expect(c.memory!.pssBytes).toBeLessThanOrEqual(c.memory!.rssBytes);
    }
    expect(new Set(clones.map((c) => c.identity?.mac)).size).toBe(CLONES);
    expect(new Set(clones.map((c) => c.identity?.vsockCid)).size).toBe(CLONES);
    const table = await env.run(['ps'], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(table.stdout).toMatch(/PRIVATE MEM/);
    expect(table.stdout).toMatch(/\bc-1\b.*snapshot base\.vmsnap.*Up .* \d+(\.\d)? MiB/);

    // Two clones: what each guest says about itself.
    const seen = [];
    for (const name of ['c-1', 'c-2']) {
      const r = await env.run(['exec', name, 'sh', '-c', 'cat /proc/sys/kernel/random/uuid; cat /sys/class/net/eth0/address; hostname'], { timeoutMs: COMMAND_TIMEOUT_MS });
      expect(r.status, r.stderr).toBe(0);
      const [uuid, mac, hostname] = r.stdout.trim().split('\n');
      const clone = clones.find((c) => c.name === name)!;
      expect(mac).toBe(clone.identity!.mac);
      expect(hostname).toBe(name);
      seen.push(uuid);
    }
    expect(seen[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen[0]).not.toBe(seen[1]);

    const stopped = await env.run(['stop', ...ids], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(stopped.status, stopped.stderr).toBe(0);
  });
});
