import { VmrunError } from './errors.js';

const SUFFIX: Record<string, number> = { '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 };

/**
 * Parses a memory size the way docker's --memory does: a number with an optional
 * K/M/G suffix (optionally followed by B or iB), case-insensitive. A bare number is bytes.
 */
export function parseSize(text: string, what = 'size'): number {
  const m = /^(\d+)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new VmrunError('usage', `${what} "${text}" is not a size like 256M or 1G`);
  const bytes = Number(m[1]) * SUFFIX[m[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(bytes)) throw new VmrunError('usage', `${what} "${text}" is too large`);
  return bytes;
}

/** Formats a byte count for people: 1.5 GiB, 256 MiB, 12 KiB, 17 B. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v >= 10 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}
