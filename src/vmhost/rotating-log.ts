import { closeSync, fstatSync, openSync, renameSync, writeSync } from 'node:fs';

/** Where a background VM's console log goes: `console.log`, and the previous one beside it. */
export interface ConsoleLogFiles {
  current: string;
  /** What `current` held before the last rotation. */
  previous: string;
}

/** The most bytes one console log file grows to before it rotates: a VM keeps at most twice this. */
export const CONSOLE_LOG_MAX_BYTES = 8 * 1024 * 1024;

/**
 * An append-only log that rotates at a size cap: when a write would take `current` past
 * `maxBytes`, `current` becomes `previous` (replacing the one before) and a new `current`
 * starts. A chatty guest in the background thus costs at most 2 x maxBytes of disk.
 * Writes are synchronous and small (console batches are at most 64 KiB).
 */
export class RotatingLog {
  private fd: number;
  private size: number;
  private failed = false;

  constructor(
    private readonly files: ConsoleLogFiles,
    private readonly maxBytes = CONSOLE_LOG_MAX_BYTES,
    private readonly onError: (e: Error) => void = () => {},
  ) {
    this.fd = openSync(files.current, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
  }

  write(chunk: Buffer): void {
    if (this.failed) return;
    try {
      if (this.size > 0 && this.size + chunk.length > this.maxBytes) this.rotate();
      let done = 0;
      while (done < chunk.length) done += writeSync(this.fd, chunk, done, chunk.length - done);
      this.size += chunk.length;
    } catch (e) {
      // A log that cannot be written (disk full) must not take the VM down.
      this.failed = true;
      this.onError(e as Error);
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  private rotate(): void {
    // Rename first: if that fails, the open file is still this log's.
    renameSync(this.files.current, this.files.previous);
    const fresh = openSync(this.files.current, 'a', 0o600);
    closeSync(this.fd);
    this.fd = fresh;
    this.size = 0;
  }
}
