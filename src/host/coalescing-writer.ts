/**
 * Appends to a file in large writes: image builders produce many small pieces (a
 * header per entry), and one syscall per piece made big images slow to build.
 */
import type { FileHandle } from 'node:fs/promises';

const WRITE_BATCH_BYTES = 1 << 20;

export class CoalescingWriter {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** Bytes handed to write() so far (written or pending). */
  written = 0;
  constructor(private readonly handle: FileHandle) {}

  async write(chunk: Uint8Array): Promise<void> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.written += chunk.length;
    if (this.pendingBytes >= WRITE_BATCH_BYTES) await this.flush();
  }

  /** Writes everything pending (needed before reading the file back). */
  async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const data = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let done = 0;
    while (done < data.length) done += (await this.handle.write(data, done, data.length - done)).bytesWritten;
  }
}
