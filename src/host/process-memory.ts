/**
 * A process's memory as Linux accounts it (/proc/PID/smaps_rollup and smaps): what a VM
 * costs the host beyond what it shares. A restored VM maps its snapshot's RAM image
 * privately: pages it only reads stay the page cache's (shared by every clone), pages it
 * writes become its own anonymous copies. "Anonymous" is the measure, not "Dirty": an
 * image on tmpfs is page cache that smaps calls dirty though no clone wrote it.
 */
import { readFile } from 'node:fs/promises';
import { VmrunError } from '../errors.js';

/** One process's totals (smaps_rollup), in bytes. */
export interface ProcessMemory {
  rssBytes: number;
  /** Proportional set size: shared pages divided among the processes that map them. */
  pssBytes: number;
  /** Anonymous pages (heap, stacks, a guest's copies of the pages it wrote): what it costs beyond files it shares. */
  anonymousBytes: number;
  /** Pages only this process maps that differ from their file (on tmpfs: every page of a file only it maps). */
  privateDirtyBytes: number;
  privateCleanBytes: number;
  sharedCleanBytes: number;
  sharedDirtyBytes: number;
  swapBytes: number;
}

/** A guest's RAM mapping, in bytes. */
export interface GuestRamMemory {
  /** The guest's RAM size (the mapping's length). */
  bytes: number;
  residentBytes: number;
  /** Pages the guest wrote (after a restore; after a boot, every page it touched): the process's own, anonymous copies. */
  writtenBytes: number;
  /** Resident pages of the RAM image the guest has not written: page cache, shared with every clone. */
  sharedBytes: number;
  pssBytes: number;
}

const FIELDS = {
  Rss: 'rssBytes',
  Pss: 'pssBytes',
  Anonymous: 'anonymousBytes',
  Private_Dirty: 'privateDirtyBytes',
  Private_Clean: 'privateCleanBytes',
  Shared_Clean: 'sharedCleanBytes',
  Shared_Dirty: 'sharedDirtyBytes',
  Swap: 'swapBytes',
} as const satisfies Record<string, keyof ProcessMemory>;

const VMA_HEADER = /^([0-9a-f]+)-([0-9a-f]+) /;
const FIELD = /^(\w+):\s+(\d+) kB$/;

/** Reads /proc/PID/smaps_rollup; undefined when the process is gone (or not ours to read). */
export async function processMemory(pid: number): Promise<ProcessMemory | undefined> {
  const text = await readProc(`/proc/${pid}/smaps_rollup`);
  if (text === undefined) return undefined;
  const out: ProcessMemory = { rssBytes: 0, pssBytes: 0, anonymousBytes: 0, privateDirtyBytes: 0, privateCleanBytes: 0, sharedCleanBytes: 0, sharedDirtyBytes: 0, swapBytes: 0 };
  for (const line of text.split('\n')) {
    const f = FIELD.exec(line);
    const key = f && FIELDS[f[1] as keyof typeof FIELDS];
    if (key) out[key] = Number(f[2]) * 1024;
  }
  return out;
}

/**
 * Sums /proc/PID/smaps over the mappings inside [address, address + bytes): a guest's
 * RAM (one mapping, unless the kernel split it).
 */
export async function guestRamMemory(pid: number, address: bigint, bytes: number): Promise<GuestRamMemory> {
  const text = await readProc(`/proc/${pid}/smaps`);
  if (text === undefined) throw new VmrunError('host', `cannot read /proc/${pid}/smaps`);
  const end = address + BigInt(bytes);
  const sum: Record<string, number> = {};
  let inside = false;
  for (const line of text.split('\n')) {
    const vma = VMA_HEADER.exec(line);
    if (vma) {
      inside = BigInt(`0x${vma[1]}`) >= address && BigInt(`0x${vma[2]}`) <= end;
      continue;
    }
    if (!inside) continue;
    const f = FIELD.exec(line);
    if (f) sum[f[1]!] = (sum[f[1]!] ?? 0) + Number(f[2]) * 1024;
  }
  const kb = (k: string): number => sum[k] ?? 0;
  return { bytes, residentBytes: kb('Rss'), writtenBytes: kb('Anonymous'), sharedBytes: kb('Rss') - kb('Anonymous'), pssBytes: kb('Pss') };
}

async function readProc(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH' || code === 'EACCES') return undefined;
    throw e;
  }
}
