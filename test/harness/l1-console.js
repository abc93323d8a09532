// @ts-check
/**
 * L1's serial console as the host sees it: the kernel log plus l1-init.sh's
 * "nested-kvm-init: ..." progress lines. Keeps the last lines for failure reports,
 * reports each progress event with its arrival time, and (with --verbose) echoes
 * everything to the harness's stderr.
 */

const PROGRESS_PREFIX = 'nested-kvm-init: ';
const TAIL_LINES = 40;

/**
 * A progress event from L1's init: 'kvm-ready', 'command-start', 'command-exit N',
 * 'FAILED: reason', ...
 * @typedef {{ event: string, atMs: number }} L1Progress
 */

/** A kernel message (after its "[  57.80]" time stamp) that L1's kernel crashed. */
const KERNEL_CRASH = /^\[\s*\d+\.\d+\] (Kernel panic - not syncing|BUG: |Oops: |general protection fault)/;

/** Parses L1's console output as it arrives. */
export class L1Console {
  /**
   * @param {{ echo?: (chunk: Buffer) => void, onProgress: (p: L1Progress) => void }} handlers
   */
  constructor(handlers) {
    this.handlers = handlers;
    /** @type {string[]} */
    this.lines = [];
    this.partial = '';
    /** The reason init gave in a "FAILED: ..." line, if any. */
    this.failure = '';
    /** The first line of L1's kernel saying it crashed (panic, oops, BUG), if any. */
    this.kernelCrash = '';
    /** @type {string[] | undefined} every line from capture() on, for a stall report */
    this.captured = undefined;
    /** When the last byte arrived (performance.now()), to tell when L1 went quiet. */
    this.lastOutputAtMs = 0;
  }

  /** Starts keeping every line from now on (the tail keeps only the last few); returns them as they come. */
  capture() {
    this.captured = [];
    return this.captured;
  }

  /** Takes the next chunk of console bytes. @param {Buffer} chunk */
  push(chunk) {
    this.handlers.echo?.(chunk);
    this.lastOutputAtMs = performance.now();
    const text = this.partial + chunk.toString('utf8');
    const lines = text.split(/\r?\n/);
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.takeLine(line.replace(/\r/g, ''));
  }

  /** @param {string} line */
  takeLine(line) {
    this.lines.push(line);
    this.captured?.push(line);
    if (this.lines.length > TAIL_LINES) this.lines.shift();
    if (!this.kernelCrash && KERNEL_CRASH.test(line)) this.kernelCrash = line.trim();
    const at = line.indexOf(PROGRESS_PREFIX);
    if (at < 0) return;
    const event = line.slice(at + PROGRESS_PREFIX.length).trim();
    if (event.startsWith('FAILED: ')) this.failure = event.slice('FAILED: '.length);
    this.handlers.onProgress({ event, atMs: performance.now() });
  }

  /** The last lines of the console, for a failure report. */
  tail() {
    return [...this.lines, ...(this.partial ? [this.partial] : [])].join('\n');
  }
}
