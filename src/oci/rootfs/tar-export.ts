import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { RootfsItem } from './entry.js';
import { keepXattrBytesInTar } from './pax-xattrs.js';

keepXattrBytesInTar();

const TAR_TYPE = {
  file: 'file',
  directory: 'directory',
  symlink: 'symlink',
  hardlink: 'link',
  'char-device': 'character-device',
  'block-device': 'block-device',
  fifo: 'fifo',
} as const;

/** Writes rootfs items as a tar stream (the format `crane export` produces) to `out`. */
export async function writeRootfsTar(items: AsyncIterable<RootfsItem>, out: Writable): Promise<{ entries: number; bytes: number }> {
  const pack = tar.pack();
  const piping = pipeline(pack, out);
  let entries = 0;
  let bytes = 0;
  try {
    for await (const { entry, content } of items) {
      const header: Partial<tar.Header> & { name: string } = {
        name: entry.type === 'directory' ? `${entry.path}/` : entry.path,
        type: TAR_TYPE[entry.type],
        mode: entry.mode,
        uid: entry.uid,
        gid: entry.gid,
        mtime: new Date(entry.mtime * 1000),
        size: entry.type === 'file' ? entry.size : 0,
      };
      if (entry.linkname !== undefined) header.linkname = entry.linkname;
      if (entry.devmajor !== undefined) {
        header.devmajor = entry.devmajor;
        header.devminor = entry.devminor ?? 0;
      }
      if (entry.xattrs) header.pax = Object.fromEntries(Object.entries(entry.xattrs).map(([k, v]) => [`SCHILY.xattr.${k}`, v]));
      entries++;
      if (entry.type === 'file' && entry.size > 0 && content) {
        bytes += await writeEntryContent(pack.entry(header), content);
      } else {
        await new Promise<void>((resolve, reject) => pack.entry(header, (err) => (err ? reject(err) : resolve())));
      }
    }
    pack.finalize();
    await piping;
  } catch (e) {
    pack.destroy(e as Error);
    await piping.catch(() => {});
    throw e;
  }
  return { entries, bytes };
}

/** Writes the tar to a file via a temp name and rename, so a failure leaves no partial file. */
export async function writeRootfsTarFile(items: AsyncIterable<RootfsItem>, path: string): Promise<{ entries: number; bytes: number }> {
  const tmp = `${path}.partial-${process.pid}`;
  try {
    const result = await writeRootfsTar(items, createWriteStream(tmp, { highWaterMark: 1 << 20 }));
    await rename(tmp, path);
    return result;
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

/** Copies content into a pack entry with backpressure, resolving when the entry is complete. */
async function writeEntryContent(sink: ReturnType<tar.Pack['entry']>, content: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  const finished = new Promise<void>((resolve, reject) => {
    sink.once('finish', () => resolve());
    sink.once('error', reject);
    sink.once('close', () => resolve());
  });
  for await (const chunk of content) {
    n += chunk.length;
    if (!sink.write(chunk)) await new Promise<void>((resolve) => sink.once('drain', () => resolve()));
  }
  sink.end(null);
  await finished;
  return n;
}
