import { formatBytes } from '../units.js';
import type { BlobProgress, ProgressListener } from './progress-events.js';

/** How progress is shown: bars redrawn in place on a terminal, one line per finished blob otherwise, or nothing. */
export type ProgressMode = 'tty' | 'lines' | 'quiet';

const BAR_WIDTH = 24;

/**
 * Renders pull/load progress to a stream (stderr): per-layer bars on a terminal,
 * quiet lines otherwise. Redraws are throttled so rendering never costs throughput.
 */
export class ProgressRenderer {
  private readonly blobs = new Map<string, BlobProgress>();
  private drawnLines = 0;
  private lastDraw = 0;
  private pending: NodeJS.Timeout | undefined;
  private finished = false;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
    readonly mode: ProgressMode = out.isTTY ? 'tty' : 'lines',
  ) {}

  /** The listener to pass to pullImage / loadDockerArchive. */
  readonly listener: ProgressListener = (p) => {
    if (this.mode === 'quiet' || this.finished) return;
    const before = this.blobs.get(p.digest);
    this.blobs.set(p.digest, p);
    if (this.mode === 'lines') {
      if ((p.status === 'done' || p.status === 'exists') && before?.status !== p.status) {
        this.out.write(`${p.label} ${shortDigest(p.digest)}: ${p.status === 'exists' ? 'already present' : `done (${formatBytes(p.total)})`}\n`);
      }
      return;
    }
    this.scheduleDraw();
  };

  private scheduleDraw(): void {
    const now = Date.now();
    if (now - this.lastDraw >= 100) {
      this.draw();
      return;
    }
    this.pending ??= setTimeout(() => {
      this.pending = undefined;
      this.draw();
    }, 100);
  }

  private draw(): void {
    this.lastDraw = Date.now();
    const lines = [...this.blobs.values()].map((p) => renderLine(p, this.out.columns || 80));
    let text = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A` : '';
    for (const l of lines) text += `\r\x1b[2K${l}\n`;
    this.drawnLines = lines.length;
    this.out.write(text);
  }

  /** Draws the final state and stops redrawing. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.pending) clearTimeout(this.pending);
    this.pending = undefined;
    if (this.mode === 'tty' && this.blobs.size > 0) this.draw();
  }
}

function shortDigest(d: string): string {
  return d.replace(/^sha(256|512):/, '').slice(0, 12);
}

function renderLine(p: BlobProgress, columns: number): string {
  const head = `${shortDigest(p.digest)} ${p.label.padEnd(11)}`;
  if (p.status === 'exists') return `${head} already present`;
  if (p.status === 'waiting') return `${head} waiting`;
  const fraction = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = `[${'='.repeat(filled)}${filled < BAR_WIDTH ? '>' : ''}${' '.repeat(Math.max(0, BAR_WIDTH - filled - 1))}]`;
  const line = `${head} ${p.status === 'done' ? 'done      ' : 'pulling   '}${bar} ${formatBytes(p.done)}/${formatBytes(p.total)}`;
  return line.slice(0, Math.max(20, columns - 1));
}
