/**
 * The e2e suite's per-file runner (test/e2e/setup/run-files-in-l1.js), the parts that
 * need no L1: which files make up the suite, how arguments split into file filters and
 * vitest options, and the closing lines summed over all files.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { e2eTestFiles } from '../e2e/setup/e2e-files.js';
import { runFile, splitArguments, summary } from '../e2e/setup/run-files-in-l1.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

describe('e2eTestFiles', () => {
  it('lists every .test.ts file under test/e2e, nested ones too, and nothing else', () => {
    const files = e2eTestFiles();
    const topLevel = readdirSync(join(REPO, 'test/e2e')).filter((f) => f.endsWith('.test.ts')).map((f) => `test/e2e/${f}`);
    expect(files).toEqual(expect.arrayContaining(topLevel));
    expect(files.length).toBeGreaterThanOrEqual(topLevel.length);
    for (const f of files) expect(f).toMatch(/^test\/e2e\/.+\.test\.ts$/);
    expect(files).toEqual([...files].sort());
  });
});

describe('splitArguments', () => {
  it('takes words as file filters and dashed arguments (with their values) as vitest options', () => {
    expect(splitArguments(['test/e2e/run.test.ts', '-t', 'pulls an image', '--bail=1', 'snapshot'])).toEqual({
      filters: ['test/e2e/run.test.ts', 'snapshot'],
      options: ['-t', 'pulls an image', '--bail=1'],
    });
  });
});

describe('runFile', () => {
  /** Harness runs that end with these statuses, in order; records how many ran. */
  function runs(...statuses: number[]) {
    const queue = [...statuses];
    const calls = { count: 0 };
    const runOnce = async () => {
      calls.count++;
      const status = queue.shift()!;
      return { status, counts: status === 123 || status === 122 ? undefined : { passed: 1, failed: status === 0 ? 0 : 1, skipped: 0 } };
    };
    return { runOnce, calls };
  }

  it('re-runs a file once after its L1 stalled (exit 123) and counts the stall', async () => {
    const { runOnce, calls } = runs(123, 0);
    const outcome = await runFile('test/e2e/x.test.ts', runOnce);
    expect(calls.count).toBe(2);
    expect(outcome).toMatchObject({ status: 0, stalls: 1, counts: { passed: 1, failed: 0 } });
  });

  it("re-runs a file once after its L1's kernel crashed (exit 122), counted apart from stalls", async () => {
    const { runOnce, calls } = runs(122, 0);
    const outcome = await runFile('test/e2e/x.test.ts', runOnce);
    expect(calls.count).toBe(2);
    expect(outcome).toMatchObject({ status: 0, stalls: 0, crashes: 1, counts: { passed: 1, failed: 0 } });
  });

  it('re-runs at most once in all, whether the L1 stalled or crashed', async () => {
    const { runOnce, calls } = runs(123, 122, 0);
    const outcome = await runFile('test/e2e/x.test.ts', runOnce);
    expect(calls.count).toBe(2);
    expect(outcome).toMatchObject({ status: 122, stalls: 1, crashes: 0, counts: undefined });
  });

  it('never re-runs a file whose tests failed', async () => {
    const { runOnce, calls } = runs(1, 0);
    const outcome = await runFile('test/e2e/x.test.ts', runOnce);
    expect(calls.count).toBe(1);
    expect(outcome).toMatchObject({ status: 1, stalls: 0, counts: { failed: 1 } });
  });

  it('fails a file whose L1 stalled again, with the stall status', async () => {
    const { runOnce, calls } = runs(123, 123, 0);
    const outcome = await runFile('test/e2e/x.test.ts', runOnce);
    expect(calls.count).toBe(2);
    expect(outcome).toMatchObject({ status: 123, stalls: 1, counts: undefined });
  });

  it('does not re-run after a harness failure or timeout (125, 124)', async () => {
    for (const status of [125, 124]) {
      const { runOnce, calls } = runs(status, 0);
      expect((await runFile('test/e2e/x.test.ts', runOnce)).status).toBe(status);
      expect(calls.count).toBe(1);
    }
  });
});

describe('summary', () => {
  const startedAt = new Date(2026, 11, 3, 16, 40, 2);

  it('sums the files\' counts in vitest\'s closing-line form', () => {
    const text = summary([
      { file: 'test/e2e/a.test.ts', status: 0, counts: { passed: 5, failed: 0, skipped: 1 }, seconds: 61.24, stalls: 0 },
      { file: 'test/e2e/b.test.ts', status: 0, counts: { passed: 3, failed: 0, skipped: 0 }, seconds: 90, stalls: 0 },
    ], startedAt, 151.5);
    expect(text.endsWith([
      '',
      ' Test Files  2 passed (2)',
      '      Tests  8 passed | 1 skipped (9)',
      '   Start at  16:40:02',
      '   Duration  151.50s (each file in its own L1)',
      '',
    ].join('\n')), text).toBe(true);
    expect(text).toContain(' ✓ test/e2e/a.test.ts (5 passed | 1 skipped) 61.2s\n');
  });

  it('counts an L1 crash that was re-run apart from stalls', () => {
    const text = summary([{ file: 'test/e2e/a.test.ts', status: 0, counts: { passed: 4, failed: 0, skipped: 0 }, seconds: 50, stalls: 0, crashes: 1 }], startedAt, 50);
    expect(text).toContain(' ✓ test/e2e/a.test.ts (4 passed) 50.0s [L1 crashed 1x, re-run]\n');
    expect(text).toContain('  L1 crashes  1 (re-run: test/e2e/a.test.ts)\n');
    expect(text).not.toContain('Stalls');
  });

  it('counts a failed file, a file without results, and a stall that was re-run', () => {
    const text = summary([
      { file: 'test/e2e/a.test.ts', status: 1, counts: { passed: 4, failed: 1, skipped: 0 }, seconds: 50, stalls: 0 },
      { file: 'test/e2e/b.test.ts', status: 0, counts: { passed: 2, failed: 0, skipped: 0 }, seconds: 200, stalls: 1 },
      { file: 'test/e2e/c.test.ts', status: 123, counts: undefined, seconds: 400, stalls: 1 },
    ], startedAt, 650);
    expect(text).toContain(' × test/e2e/a.test.ts (1 failed | 4 passed) 50.0s\n');
    expect(text).toContain(' ✓ test/e2e/b.test.ts (2 passed) 200.0s [L1 stalled 1x, re-run]\n');
    expect(text).toContain(' × test/e2e/c.test.ts (no results, harness exit 123) 400.0s [L1 stalled 1x, re-run]\n');
    expect(text).toContain('     Stalls  2 (re-run: test/e2e/b.test.ts, test/e2e/c.test.ts)\n');
    expect(text).not.toContain('L1 crashes');
    expect(text).toContain(' Test Files  2 failed | 1 passed (3)\n');
    expect(text).toContain('      Tests  1 failed | 6 passed (7)\n');
  });
});
