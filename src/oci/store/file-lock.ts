import { createHash, randomBytes } from 'node:crypto';
import { link, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { VmrunError } from '../../errors.js';
import { processAlive } from '../../host/process-alive.js';

/** A held lock; release it exactly once. */
export interface HeldLock {
  release(): Promise<void>;
}

/** The holder's pid from a lock file's content: "PID TOKEN\n" (older vmrun wrote only "PID"). */
function holderPid(content: string): number {
  return Number(content.trim().split(/\s+/)[0]);
}

/**
 * Takes an exclusive lock file holding "PID TOKEN". Waits while a live process holds
 * it, takes it over when its holder died, and gives up after `timeoutMs` with an
 * error naming the holder. `until` lets a waiter stop early (e.g. when the blob
 * another process was fetching has appeared).
 *
 * The lock file is always complete when it appears (written to a temp file, then
 * linked or renamed into place), and a lock is only ever removed or replaced by:
 *  - its holder, on release, after checking the file still carries its token;
 *  - the one waiter that wins the takeover of a given stale content: it creates a
 *    marker named after that content (O_EXCL: exactly one wins), re-reads the lock to
 *    check it still holds that content (nothing else can change a stale lock: its
 *    holder is dead and creators need the path free), and renames its own lock over it.
 */
export async function acquireLock(
  path: string,
  what: string,
  opts: { timeoutMs?: number; until?: () => Promise<boolean> } = {},
): Promise<HeldLock | undefined> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000);
  const content = `${process.pid} ${randomBytes(8).toString('hex')}\n`;
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, content, { flag: 'wx' });
  const held: HeldLock = {
    release: once(async () => {
      // Only our own lock: a lock taken over (we were judged dead) belongs to another.
      if ((await readFile(path, 'utf8').catch(() => '')) === content) await unlink(path).catch(() => {});
    }),
  };
  let delay = 5;
  try {
    for (;;) {
      try {
        await link(tmp, path);
        return held;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const current = await readFile(path, 'utf8').catch(() => undefined);
      if (current === undefined) continue; // released meanwhile
      const holder = holderPid(current);
      if (!processAlive(holder) && (await takeOver(path, current, tmp))) return held;
      if (opts.until && (await opts.until())) return undefined;
      if (Date.now() > deadline) {
        throw new VmrunError('host', `${what} is locked by process ${holder || '(unknown)'}; gave up waiting (remove ${path} if that process is gone)`);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 200);
    }
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/** Replaces a stale lock whose content was `stale` with ours (at `tmp`); true if this caller won. */
async function takeOver(path: string, stale: string, tmp: string): Promise<boolean> {
  const marker = `${path}.takeover-${createHash('sha256').update(stale).digest('hex').slice(0, 16)}`;
  let fh;
  try {
    fh = await open(marker, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false; // another waiter is taking it over
    throw e;
  }
  await fh.close();
  try {
    // Under the marker nobody else can replace this content; if it changed, the stale lock is already gone.
    if ((await readFile(path, 'utf8').catch(() => undefined)) !== stale) return false;
    // A copy of our content, renamed over the stale lock (link cannot replace a file).
    const ours = `${tmp}.takeover`;
    await link(tmp, ours);
    await rename(ours, path);
    return true;
  } finally {
    await unlink(marker).catch(() => {});
  }
}

function once(f: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= f());
}
