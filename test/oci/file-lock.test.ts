import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireLock } from '../../src/oci/store/file-lock.js';

const dir = mkdtempSync(join(tmpdir(), 'vmrun-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The pid of a process that has exited (so a lock naming it is stale). */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

describe('file locks', () => {
  it('breaks a stale lock so that exactly one of many concurrent waiters holds it at a time', async () => {
    for (let round = 0; round < 5; round++) {
      const path = join(dir, `stale-${round}.lock`);
      writeFileSync(path, String(deadPid())); // the holder wrote only its pid (as before tokens)
      let inside = 0;
      let most = 0;
      let entered = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          const lock = await acquireLock(path, 'test resource', { timeoutMs: 20_000 });
          inside++;
          entered++;
          most = Math.max(most, inside);
          await sleep(5);
          inside--;
          await lock!.release();
        }),
      );
      expect(entered).toBe(8);
      expect(most, `round ${round}: ${most} holders at once`).toBe(1);
      expect(existsSync(path)).toBe(false);
    }
    // No markers or temp files are left behind by the takeovers.
    expect(readdirSync(dir).filter((f) => f.startsWith('stale-'))).toEqual([]);
  });

  it('release() leaves a lock that is no longer its own', async () => {
    const path = join(dir, 'taken-over.lock');
    const lock = await acquireLock(path, 'test resource');
    // Another process took the lock over (as a breaker does when it judges the holder dead).
    writeFileSync(path, `${process.pid + 1} 0123456789abcdef\n`);
    await lock!.release();
    expect(readFileSync(path, 'utf8')).toBe(`${process.pid + 1} 0123456789abcdef\n`);
    rmSync(path);
  });

  it('times out naming the live holder', async () => {
    const path = join(dir, 'held.lock');
    const lock = await acquireLock(path, 'test resource');
    await expect(acquireLock(path, 'test resource', { timeoutMs: 50 })).rejects.toThrow(new RegExp(`test resource is locked by process ${process.pid}`));
    await lock!.release();
    expect(existsSync(path)).toBe(false);
  });
});
