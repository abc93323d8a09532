/**
 * Snapshots of a real Linux guest through the CLI: a shell session started with
 * `vmrun run -d` is saved with `vmrun snapshot save --stop` and restored, in the
 * background and in the foreground; the restored guest is the same session, not a
 * new boot: a value it drew at random before the save is still in its variable, and
 * its counter (also appended to a file in tmpfs) goes on from where it was.
 * Run: scripts/e2e.sh test/e2e/snapshot-linux.test.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type LiveCommand } from '../vmhost/vm-env.js';
import { busyboxUnavailableReason, writeBusyboxLayout } from './helpers/busybox-image.js';
import { VmrunTestEnv } from './helpers/vmrun-env.js';

/** A vmrun command in L1 takes 5-20 s (Node's start under TCG); a boot adds a few. */
const COMMAND_TIMEOUT_MS = 150_000;
/** The guest counts once a second; a few counts must fit in a CLI round trip under load. */
const OUTPUT_TIMEOUT_MS = 150_000;

/**
 * The session: MARK is drawn at random in the guest (a new boot would draw another);
 * a background loop appends an increasing counter to /tmp/counter (vmrun-init's
 * tmpfs) and prints it; the shell itself prints MARK and the file's line count.
 */
const SESSION = [
  'MARK=$(cat /proc/sys/kernel/random/uuid)',
  '( i=0; while :; do i=$((i+1)); echo $i >> /tmp/counter; echo "count $i"; sleep 1; done ) &',
  'while :; do sleep 2; echo "mark $MARK lines $(wc -l < /tmp/counter)"; done',
].join('\n');

const skipReason = busyboxUnavailableReason();
if (skipReason) console.warn(`snapshot e2e skipped: ${skipReason}`);

let env: VmrunTestEnv;
let layout: string;
let image: string;

beforeAll(async () => {
  if (skipReason) return;
  env = new VmrunTestEnv();
  layout = mkdtempSync(join(tmpdir(), 'vmrun-e2e-snapshot-layout-'));
  await writeBusyboxLayout(layout, 'v1');
  image = `oci:${layout}:v1`;
}, 60_000);

afterAll(() => {
  env?.cleanup();
  if (layout) rmSync(layout, { recursive: true, force: true });
});

/** Every "count N" line of a console stream, in order. */
function counts(output: string): number[] {
  return [...output.matchAll(/^count (\d+)$/gm)].map((m) => Number(m[1]));
}

/** The "mark" lines: the session's variable and the counter file's length when printed. */
function marks(output: string): { mark: string; lines: number }[] {
  return [...output.matchAll(/^mark (\S+) lines (\d+)$/gm)].map((m) => ({ mark: m[1]!, lines: Number(m[2]) }));
}

/** Waits until `command` has printed a count above `above` and, after it, a mark line. */
async function waitForProgress(command: LiveCommand, above: number): Promise<void> {
  await eventually(
    async () => {
      const last = counts(command.stdout).at(-1) ?? 0;
      return last > above && marks(command.stdout).length > 0 ? true : undefined;
    },
    `output with a count above ${above} and a mark line`,
    OUTPUT_TIMEOUT_MS,
  );
}

/** 1, 2, ..., n: what one uninterrupted session prints. */
const oneToN = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe.skipIf(skipReason !== undefined)('snapshot save and restore of a Linux shell session', () => {
  it('restored in the background and in the foreground, the session goes on where it was', async () => {
    const started = await env.run(['run', '-d', '-q', '--name', 'session', image, 'sh', '-c', SESSION], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(started.status, started.stderr).toBe(0);

    // Before the save: the session counts and prints its mark.
    const before = env.start(['logs', '-f', 'session']);
    await waitForProgress(before, 3);
    const saved = await env.run(['snapshot', 'save', 'session', '-o', 's', '--stop'], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(saved.status, saved.stderr).toBe(0);
    expect(saved.stdout.trim()).toBe(join(env.home, 'snapshots', 's.vmsnap'));
    // --stop ends the VM, and with it `logs -f`: its output is the whole console up to the save.
    expect(await before.waitExit(60_000)).toBe(0);
    const beforeSave = before.stdout;
    const lastCount = counts(beforeSave).at(-1)!;
    const mark = marks(beforeSave)[0]!.mark;
    console.log(`saved at count ${lastCount}: ${saved.stderr.trim()}`);

    // Restored in the background: same session, counter continuing.
    const restored = await env.run(['snapshot', 'restore', 's', '-d', '--name', 'restored'], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(restored.status, restored.stderr).toBe(0);
    const after = env.start(['logs', '-f', 'restored']);
    await waitForProgress(after, lastCount + 2);
    // The console before the save and after the restore is one session's stream: no
    // count restarts or repeats, and the variable still holds the value drawn before.
    const background = beforeSave + after.stdout;
    expect(counts(background)).toEqual(oneToN(counts(background).length));
    const marksAfter = marks(after.stdout);
    expect(marksAfter.map((m) => m.mark)).toEqual(marksAfter.map(() => mark));
    // The tmpfs file kept what was written before the save.
    expect(marksAfter[0]!.lines).toBeGreaterThanOrEqual(lastCount);

    const stopped = await env.run(['stop', 'restored'], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(stopped.status, stopped.stderr).toBe(0);
    await after.waitExit(60_000);
    await eventually(async () => (env.hostPids().length === 0 ? true : undefined), 'no VM host process left', 30_000);

    // The same snapshot restored in the foreground: the console is vmrun's stdout.
    const foreground = env.start(['snapshot', 'restore', 's']);
    await waitForProgress(foreground, lastCount + 2);
    foreground.child.kill('SIGINT');
    expect(await foreground.waitExit(30_000)).toBe(130);
    const attached = beforeSave + foreground.stdout;
    expect(counts(attached)).toEqual(oneToN(counts(attached).length));
    expect(marks(foreground.stdout).map((m) => m.mark)).toEqual(marks(foreground.stdout).map(() => mark));
  });
});
