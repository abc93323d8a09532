/**
 * Snapshots of a Hermit guest that works on host files: a background `vmrun boot` of
 * the file-steps test kernel (fixtures/hermit) is saved mid-run with `snapshot save
 * --stop` (held after step HOLD_AT until console input comes, so the save lands there
 * however slowly the commands run) and restored in a new process, with input, which
 * goes on reading and writing its files at the offsets it had: every step happens
 * once, in order, across the two processes.
 * A mapped file that vanished or was replaced meanwhile is refused in one line.
 * Run: scripts/e2e.sh test/e2e/hermit-snapshot.test.ts
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHermitKernels, hermitKernel } from '../hermit/hermit-fixtures.js';
import { eventually } from '../vmhost/vm-env.js';
import { VmrunTestEnv } from './helpers/vmrun-env.js';

/** A vmrun command in L1 takes 5-20 s (Node's start under TCG). */
const COMMAND_TIMEOUT_MS = 150_000;
const STEPS = 16;
const HOLD_AT = 5;
/** What input.txt holds: the guest reads two bytes of it per step. */
const INPUT = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** The line the guest writes for step i (to its log file and its console). */
const stepLine = (i: number): string => `step ${i} input=${INPUT.slice(2 * (i - 1), 2 * i)}`;
const stepNumbers = (text: string): number[] => [...text.matchAll(/^step (\d+) input=/gm)].map((m) => Number(m[1]));

let env: VmrunTestEnv;

beforeAll(() => {
  buildHermitKernels();
  env = new VmrunTestEnv();
}, 10 * 60_000);

afterAll(() => env?.cleanup());

describe('snapshots of a Hermit guest with open host files', () => {
  it('saved mid-run and restored in a new process, it goes on at the right offsets; a changed file is refused', async () => {
    const data = join(env.root, 'data');
    mkdirSync(data);
    const log = join(data, 'log.txt');
    writeFileSync(join(data, 'input.txt'), INPUT);
    writeFileSync(log, '');
    const snapshot = join(env.root, 'steps.vmsnap');

    const started = await env.run(['boot', '-d', '--name', 'steps', '--memory', '32M', '--file-mapping', `${data}:/data`, hermitKernel('file-steps'), '--', `steps=${STEPS}`, 'ms=100', `hold=${HOLD_AT}`], {
      timeoutMs: COMMAND_TIMEOUT_MS,
    });
    expect(started.stderr).toBe('');
    expect(started.status).toBe(0);
    await eventually(async () => ((await env.run(['logs', 'steps'], { timeoutMs: COMMAND_TIMEOUT_MS })).stdout.includes(`step ${HOLD_AT} input=`) ? true : undefined), `step ${HOLD_AT} on the console`, COMMAND_TIMEOUT_MS);

    const saved = await env.run(['snapshot', 'save', 'steps', '-o', snapshot, '--stop'], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(saved.stderr).toMatch(/^vmrun: saved \d+ KiB \(guest paused [\d.]+ ms\)\n$/);
    expect(saved.status).toBe(0);
    const before = (await env.run(['logs', 'steps'], { timeoutMs: COMMAND_TIMEOUT_MS })).stdout;
    const printed = stepNumbers(before);
    expect(printed).toEqual(Array.from({ length: HOLD_AT }, (_, i) => i + 1));
    const logAtSave = readFileSync(log, 'utf8');
    expect(stepNumbers(logAtSave)).toEqual(printed);

    // Vanished, then replaced by a file with other bytes: refused in one line, nothing run.
    renameSync(log, `${log}.kept`);
    const gone = await env.run(['snapshot', 'restore', snapshot], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(gone.status).toBe(125);
    expect(gone.stdout).toBe('');
    expect(gone.stderr.trim().split('\n')).toHaveLength(1);
    expect(gone.stderr).toContain(`the Hermit guest's open file /data/log.txt (${log}) is gone since the snapshot was taken`);
    writeFileSync(log, `${logAtSave}step 99 input=zz\n`);
    const changed = await env.run(['snapshot', 'restore', snapshot], { timeoutMs: COMMAND_TIMEOUT_MS });
    expect(changed.status).toBe(125);
    expect(changed.stdout).toBe('');
    expect(changed.stderr.trim().split('\n')).toHaveLength(1);
    expect(changed.stderr).toContain(`the Hermit guest's open file /data/log.txt (${log}) changed since the snapshot was taken`);
    rmSync(log);
    renameSync(`${log}.kept`, log);

    // The file as it was: the restored guest goes on from where it was, in a new process.
    const restored = await env.run(['snapshot', 'restore', '-i', snapshot], { input: 'g', timeoutMs: COMMAND_TIMEOUT_MS * 2 });
    expect(restored.stderr).toBe('');
    expect(restored.stdout).not.toContain('hermit: file-steps');  // not a new boot
    const after = stepNumbers(restored.stdout);
    expect([...printed, ...after]).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    for (const i of after) expect(restored.stdout).toContain(`${stepLine(i)}\n`);
    // The private /tmp/notes came back whole: the guest's own check of every note, in order.
    expect(restored.stdout).toContain(`notes: ok (`);
    expect(restored.stdout).toMatch(/hermit: exit 0\n$/);
    expect(restored.status).toBe(0);
    // Each step once in the mapped file, in order: no offset lost or reset across the restore.
    expect(readFileSync(log, 'utf8')).toBe(Array.from({ length: STEPS }, (_, i) => `${stepLine(i + 1)}\n`).join(''));
    expect(existsSync(`${log}.kept`)).toBe(false);
  });
});
