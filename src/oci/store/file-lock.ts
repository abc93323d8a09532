import { open, readFile, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { VmrunError } from '../../errors.js';

/** A held lock; release it exactly once. */
export interface HeldLock {
  release(): Promise<void>;
}

/** True if a process with this pid exists (a lock held by a dead process is stale). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes an exclusive lock file (created with O_EXCL, holding our pid). Waits while a
 * live process holds it, breaks it when its holder died, and gives up after
 * `timeoutMs` with an error naming the holder. `until` lets a waiter stop early
 * (e.g. when the blob another process was fetching has appeared).
 */
export async function acquireLock(
  path: string,
  what: string,
  opts: { timeoutMs?: number; until?: () => Promise<boolean> } = {},
): Promise<HeldLock | undefined> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000);
  let delay = 5;
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      let released = false;
      return {
        release: async () => {
          if (released) return;
          released = true;
          await unlink(path).catch(() => {});
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (holder && !processAlive(holder)) {
      await unlink(path).catch(() => {});
      continue;
    }
    if (opts.until && (await opts.until())) return undefined;
    if (Date.now() > deadline) {
      throw new VmrunError('host', `${what} is locked by process ${holder || '(unknown)'}; gave up waiting (remove ${path} if that process is gone)`);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 200);
  }
}
