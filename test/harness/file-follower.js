// @ts-check
/**
 * Follows a file that another writer (L1, through 9p, or QEMU's console chardev)
 * appends to, and hands each new chunk to a sink, like `tail -f`. Polling rather
 * than fs.watch: inotify does not see writes made by a 9p server on every setup,
 * and a 50 ms poll costs nothing next to a TCG guest.
 */
import { closeSync, openSync, readSync } from 'node:fs';

const POLL_INTERVAL_MS = 50;
const CHUNK_BYTES = 64 * 1024;

/** Follows one file from its start; `drain()` after the writer is gone reads the rest. */
export class FileFollower {
  /**
   * @param {string} path
   * @param {(chunk: Buffer) => void} sink
   */
  constructor(path, sink) {
    this.path = path;
    this.sink = sink;
    this.offset = 0;
    /** @type {number | undefined} */
    this.fd = undefined;
    this.stopped = false;
    this.timer = setInterval(() => this.readNew(), POLL_INTERVAL_MS);
  }

  /** Reads whatever was appended since the last read (the file may not exist yet). */
  readNew() {
    if (this.fd === undefined) {
      try {
        this.fd = openSync(this.path, 'r');
      } catch {
        return;
      }
    }
    const buf = Buffer.allocUnsafe(CHUNK_BYTES);
    for (;;) {
      const n = readSync(this.fd, buf, 0, buf.length, this.offset);
      if (n === 0) return;
      this.offset += n;
      this.sink(Buffer.from(buf.subarray(0, n)));
    }
  }

  /** Stops polling after reading everything written so far. */
  drain() {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.readNew();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
