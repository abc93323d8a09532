import { open, stat, type FileHandle } from 'node:fs/promises';
import type { VmRegistry } from './registry.js';

/** How often `logs -f` looks for new output and for the VM's end. */
const FOLLOW_POLL_MS = 200;
const READ_CHUNK = 64 * 1024;

/**
 * Copies VM `id`'s console log to `write`: the part rotated out (console.log.1), then
 * console.log; with `follow`, keeps copying what the guest prints until the VM is no
 * longer running (exited or dead) or `signal` aborts, following the log across
 * rotations. The host writes the whole log before recording the end, so the last read
 * after seeing the end misses nothing.
 */
export async function copyConsoleLog(
  registry: VmRegistry,
  id: string,
  write: (chunk: Buffer) => Promise<void>,
  opts: { follow?: boolean; signal?: AbortSignal } = {},
): Promise<void> {
  const paths = registry.paths(id);
  let current = await openIfExists(paths.consoleLog);
  if (!current) return; // the machine never produced a log
  try {
    const previous = await openIfExists(paths.consoleLogPrevious);
    if (previous) {
      try {
        // Unless a rotation just made the file opened above the previous one.
        if ((await previous.stat()).ino !== (await current.stat()).ino) await copyFrom(previous, 0, write);
      } finally {
        await previous.close();
      }
    }
    let offset = await copyFrom(current, 0, write);
    while (opts.follow && !opts.signal?.aborted) {
      // Look at the state before reading: output written before an end seen here is then read below.
      const record = await registry.read(id);
      const status = record && (await registry.entry(record)).status;
      const running = status === 'starting' || status === 'running' || status === 'paused';
      offset = await copyFrom(current, offset, write);
      const now = await stat(paths.consoleLog).catch(() => undefined);
      if (now && now.ino !== (await current.stat()).ino) {
        // Rotated: what was written to the old file is read above; go on with the new one.
        offset = await copyFrom(current, offset, write);
        await current.close();
        current = await openIfExists(paths.consoleLog);
        if (!current) return;
        offset = 0;
        continue;
      }
      if (!running) return;
      await sleep(FOLLOW_POLL_MS, opts.signal);
    }
  } finally {
    await current?.close();
  }
}

async function openIfExists(path: string): Promise<FileHandle | undefined> {
  return open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
}

/** Copies `file` from `offset` to its current end; returns the new offset. */
async function copyFrom(file: FileHandle, offset: number, write: (chunk: Buffer) => Promise<void>): Promise<number> {
  const buffer = Buffer.alloc(READ_CHUNK);
  for (;;) {
    const { bytesRead } = await file.read(buffer, 0, READ_CHUNK, offset);
    if (bytesRead === 0) return offset;
    offset += bytesRead;
    await write(Buffer.from(buffer.subarray(0, bytesRead)));
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
