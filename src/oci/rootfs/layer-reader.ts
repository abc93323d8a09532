import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type tar from 'tar-stream';
import { VmrunError, isVmrunError } from '../../errors.js';
import { Limits } from '../limits.js';
import type { FileMetadata } from './entry.js';
import { keepXattrBytesInTar } from './pax-xattrs.js';

keepXattrBytesInTar();

/** The tar header of one layer entry, reduced to plain data (what the layer index caches). */
export interface LayerHeader extends FileMetadata {
  name: string;
  type: 'file' | 'link' | 'symlink' | 'directory' | 'character-device' | 'block-device' | 'fifo';
}

/** How a layer's bytes are compressed, judged from its first bytes (media types lie). */
export type LayerCompression = 'gzip' | 'zstd' | 'none';

/** Detects compression from a layer file's magic bytes. */
export async function detectCompression(path: string): Promise<LayerCompression> {
  const fh = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(4), 0, 4, 0);
    if (bytesRead >= 2 && buffer[0] === 0x1f && buffer[1] === 0x8b) return 'gzip';
    if (bytesRead === 4 && buffer.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    return 'none';
  } finally {
    await fh.close();
  }
}

const KNOWN_TYPES = new Set(['file', 'contiguous-file', 'link', 'symlink', 'directory', 'character-device', 'block-device', 'fifo']);

function toLayerHeader(h: tar.Header, where: string): LayerHeader {
  const type = h.type ?? 'file';
  if (!KNOWN_TYPES.has(type)) throw new VmrunError('image', `${where}: unsupported tar entry type "${type}"`);
  const size = h.size ?? 0;
  if (!Number.isSafeInteger(size) || size < 0 || size > Limits.entryBytes) {
    throw new VmrunError('image', `${where}: size ${size} is absurd (limit ${Limits.entryBytes} bytes)`);
  }
  const mtimeMs = h.mtime instanceof Date ? h.mtime.getTime() : 0;
  const header: LayerHeader = {
    name: h.name,
    type: type === 'contiguous-file' ? 'file' : (type as LayerHeader['type']),
    mode: (h.mode ?? 0o644) & 0o7777,
    uid: h.uid ?? 0,
    gid: h.gid ?? 0,
    mtime: Number.isFinite(mtimeMs) ? Math.floor(mtimeMs / 1000) : 0,
    size: type === 'file' || type === 'contiguous-file' ? size : 0,
  };
  if (h.linkname) header.linkname = h.linkname;
  if (type === 'character-device' || type === 'block-device') {
    header.devmajor = h.devmajor ?? 0;
    header.devminor = h.devminor ?? 0;
  }
  const pax = (h as { pax?: Record<string, string> }).pax;
  if (pax) {
    for (const [k, v] of Object.entries(pax)) {
      if (k.startsWith('SCHILY.xattr.')) (header.xattrs ??= {})[k.slice('SCHILY.xattr.'.length)] = v;
    }
  }
  return header;
}

/** A pass-through that hashes the uncompressed tar stream (for diff_id checks). */
class HashTap extends Transform {
  constructor(readonly hash: Hash) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    done(null, chunk);
  }
}

/** One entry as read from a layer: its header and its content stream (drained if not read). */
export interface LayerEntry {
  header: LayerHeader;
  /** The entry's bytes; must be read before the next entry (unread content is drained). */
  content: AsyncIterable<Buffer>;
}

/**
 * Reads a stored layer blob as tar entries, decompressing gzip or zstd as detected.
 * `label` names the layer in errors. With `hash`, the uncompressed bytes are hashed
 * (the caller reads the digest after the iteration completes). Breaking out of the
 * loop early stops reading the file.
 */
export async function* readLayer(path: string, label: string, hash?: Hash): AsyncGenerator<LayerEntry> {
  const compression = await detectCompression(path);
  // Loaded here, not with the module: a run whose root filesystem is cached reads no layer.
  const [{ default: tarStream }, zstd] = await Promise.all([import('tar-stream'), compression === 'zstd' ? import('zstd-napi') : undefined]);
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  const stages: NodeJS.ReadWriteStream[] = [];
  if (compression === 'gzip') stages.push(createGunzip({ chunkSize: 256 << 10 }));
  if (zstd) stages.push(new zstd.DecompressStream({ windowLogMax: 27 }));
  if (hash) stages.push(new HashTap(hash));
  const extract = tarStream.extract();
  const all = [file, ...stages, extract] as unknown as Readable[];
  const done = pipeline(all as unknown as [Readable, NodeJS.WritableStream]).catch((e: Error) => e);
  // The pipeline reports the first failure (through `done` or an entry); a stage that
  // fails again after it settled (a decompressor flushing a truncated stream) must not
  // become an uncaught 'error' event that kills the process.
  for (const s of all) s.on('error', () => {});
  let ordinal = 0;
  try {
    for await (const entry of extract) {
      const where = `${label} entry ${ordinal} "${String(entry.header.name).slice(0, 200)}"`;
      let finished = false;
      const ended = new Promise<void>((resolve, reject) => {
        entry.once('end', () => {
          finished = true;
          resolve();
        });
        entry.once('error', reject);
        entry.once('close', resolve);
      });
      // Awaited below only when the consumer came back for the next entry; if it
      // stopped (its own error), a later failure of this entry must not be unhandled.
      ended.catch(() => {});
      yield { header: toLayerHeader(entry.header, where), content: contentOf(entry as AsyncIterable<Buffer>, label) };
      if (!finished) {
        entry.resume();
        await ended;
      }
      ordinal++;
    }
    const failure = await done;
    if (failure instanceof Error) throw failure;
  } catch (e) {
    throw layerError(e, label);
  } finally {
    for (const s of all) s.destroy();
  }
}

/** An entry's bytes, with a failure while reading them (a truncated or corrupt stream) reported as the layer's. */
async function* contentOf(entry: AsyncIterable<Buffer>, label: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of entry) yield chunk;
  } catch (e) {
    throw layerError(e, label);
  }
}

function layerError(e: unknown, label: string): VmrunError {
  if (isVmrunError(e)) return e;
  const msg = (e as Error).message ?? String(e);
  return new VmrunError('image', `${label}: cannot read layer: ${msg}`, { cause: e });
}

/** Creates a fresh hash for a diff_id algorithm. */
export function diffIdHash(algorithm: 'sha256' | 'sha512'): Hash {
  return createHash(algorithm);
}
