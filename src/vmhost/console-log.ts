import { open } from 'node:fs/promises';
import type { VmRegistry } from './registry.js';

/** How often `logs -f` looks for new output and for the VM's end. */
const FOLLOW_POLL_MS = 200;
const READ_CHUNK = 64 * 1024;

/**
 * Copies VM `id`'s console log to `write`; with `follow`, keeps copying what the
 * guest prints until the VM is no longer running (exited or dead) or `signal`
 * aborts. The host writes the whole log before recording the end, so the last
 * read after seeing the end misses nothing.
 */
export async function copyConsoleLog(
  registry: VmRegistry,
  id: string,
  write: (chunk: Buffer) => Promise<void>,
  opts: { follow?: boolean; signal?: AbortSignal } = {},
): Promise<void> {
  const file = await open(registry.paths(id).consoleLog, 'r').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined; // the machine never produced a log
    throw e;
  });
  if (!file) return;
  try {
    let offset = 0;
    const drain = async (): Promise<void> => {
      const buffer = Buffer.alloc(READ_CHUNK);
      for (;;) {
        const { bytesRead } = await file.read(buffer, 0, READ_CHUNK, offset);
        if (bytesRead === 0) return;
        offset += bytesRead;
        await write(Buffer.from(buffer.subarray(0, bytesRead)));
      }
    };
    await drain();
    while (opts.follow && !opts.signal?.aborted) {
      // Look at the state before reading: output written before an end seen here is then read below.
      const record = await registry.read(id);
      const status = record && (await registry.entry(record)).status;
      const running = status === 'starting' || status === 'running' || status === 'paused';
      await drain();
      if (!running) return;
      await sleep(FOLLOW_POLL_MS, opts.signal);
    }
  } finally {
    await file.close();
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
