import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { VmrunError, isVmrunError } from '../../errors.js';
import { splitDigest, type Digest } from '../digest.js';

/** Where a blob's bytes come from: a stream starting at `offset`, or earlier if the source cannot seek. */
export type BlobSource = (offset: number) => Promise<{ stream: Readable; offset: number }>;

/** Progress of one blob's ingestion. */
export type IngestProgress = (done: number, total: number) => void;

/** How often a broken stream is reopened (from where it broke) before giving up. */
const MAX_RESUMES = 5;

/**
 * Streams a blob into `partialPath`, resuming from what a previous (interrupted) run
 * left there, hashing as it goes, and renames it to `finalPath` only once its size
 * and digest match. A broken stream is reopened at the current offset (HTTP Range).
 */
export async function ingestBlob(
  expected: { digest: Digest; size: number },
  source: BlobSource,
  partialPath: string,
  finalPath: string,
  what: string,
  onProgress?: IngestProgress,
  durable = true,
): Promise<void> {
  const { algorithm } = splitDigest(expected.digest);
  let hash = createHash(algorithm);
  let offset = 0;
  const existing = await stat(partialPath).catch(() => undefined);
  if (existing && existing.size <= expected.size) {
    offset = await hashFilePrefix(partialPath, hash);
  }
  const fh = await open(partialPath, existing && offset > 0 ? 'r+' : 'w');
  try {
    let resumes = 0;
    for (;;) {
      onProgress?.(offset, expected.size);
      if (offset === expected.size) break;
      try {
        const opened = await source(offset);
        if (opened.offset !== offset) {
          // The source restarted from the beginning (no Range support): start over.
          hash = createHash(algorithm);
          offset = 0;
          await fh.truncate(0);
        }
        const progress = { offset };
        try {
          await copyStream(opened.stream, fh, progress, hash, expected.size, what, onProgress);
        } finally {
          // Bytes written before a failure are kept (and hashed): resume after them.
          offset = progress.offset;
        }
        if (offset < expected.size) throw new VmrunError('registry', `${what}: stream ended after ${offset} of ${expected.size} bytes`);
        break;
      } catch (e) {
        if (isVmrunError(e, 'digest') || !isResumable(e) || ++resumes > MAX_RESUMES) throw e;
      }
    }
    const actual = `${algorithm}:${hash.digest('hex')}`;
    if (actual !== expected.digest) {
      await fh.close().catch(() => {});
      await unlink(partialPath).catch(() => {});
      throw new VmrunError('digest', `${what}: downloaded content has digest ${actual}, expected ${expected.digest}`);
    }
    await fh.truncate(offset);
    if (durable) await fh.datasync();
  } finally {
    await fh.close().catch(() => {});
  }
  await rename(partialPath, finalPath);
}

/** A short read or a dropped connection is worth resuming; a refusal is not. */
function isResumable(e: unknown): boolean {
  if (isVmrunError(e)) return e.kind === 'registry' && /stream ended|connection/i.test(e.message);
  const code = (e as { code?: string }).code ?? '';
  return /^(ECONNRESET|EPIPE|ETIMEDOUT|ECONNREFUSED|UND_ERR_SOCKET|UND_ERR_BODY_TIMEOUT|UND_ERR_CLOSED|UND_ERR_ABORTED|ERR_STREAM_PREMATURE_CLOSE|UND_ERR_RES_CONTENT_LENGTH_MISMATCH)$/.test(code) || /terminated|other side closed/i.test((e as Error).message ?? '');
}

async function hashFilePrefix(path: string, hash: Hash): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    n += (chunk as Buffer).length;
  }
  return n;
}

async function copyStream(
  stream: Readable,
  fh: FileHandle,
  position: { offset: number },
  hash: Hash,
  limit: number,
  what: string,
  onProgress?: IngestProgress,
): Promise<void> {
  try {
    for await (const chunk of stream) {
      const buf = chunk as Buffer;
      if (position.offset + buf.length > limit) {
        throw new VmrunError('digest', `${what}: more than the ${limit} bytes its descriptor declares`);
      }
      let written = 0;
      while (written < buf.length) {
        const r = await fh.write(buf, written, buf.length - written, position.offset + written);
        written += r.bytesWritten;
      }
      hash.update(buf);
      position.offset += buf.length;
      onProgress?.(position.offset, limit);
    }
  } finally {
    stream.destroy();
  }
}
