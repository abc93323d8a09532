// A directory tree described as data (type, mode, size, sha256, link target, mtime) for exact comparison.
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'fifo' | 'other';
  mode: number;
  size?: number;
  sha256?: string;
  target?: string;
  mtime: number;
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Every entry under `root` (root itself is ""), keyed by relative path. */
export async function describeTree(root: string): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  const walk = async (rel: string): Promise<void> => {
    const path = rel ? join(root, rel) : root;
    // Whole seconds from the exact nanoseconds: mtimeMs is a double, and near the end
    // of a second it rounds up into the next one.
    const st = lstatSync(path, { bigint: true });
    const base = { mode: Number(st.mode & 0o7777n), mtime: Number(st.mtimeNs / 1_000_000_000n) };
    if (st.isDirectory()) {
      out[rel] = { type: 'dir', ...base };
      for (const c of readdirSync(path)) await walk(rel ? `${rel}/${c}` : c);
    } else if (st.isFile()) out[rel] = { type: 'file', ...base, size: Number(st.size), sha256: await sha256(path) };
    else if (st.isSymbolicLink()) out[rel] = { type: 'symlink', mode: 0, mtime: base.mtime, target: readlinkSync(path) };
    else if (st.isFIFO()) out[rel] = { type: 'fifo', ...base };
    else out[rel] = { type: 'other', ...base };
  };
  await walk('');
  return out;
}
