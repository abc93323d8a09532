/**
 * The host's half of docker cp: a tar stream of a host path (what the guest agent
 * extracts), and a safe extraction of the guest agent's tar stream onto the host.
 * Both keep modes, owners (when root), symbolic and hard links and times.
 */
import { createReadStream, constants as fsConstants } from 'node:fs';
import { chmod, chown, lchown, link, lstat, lutimes, mkdir, open, readdir, readlink, symlink, unlink, utimes } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { VmrunError } from '../errors.js';

/** Deeper trees than this are refused rather than recursed into. */
const MAX_DEPTH = 256;

/** A tar stream of `hostPath`, its entries named `basename(hostPath)` and below. */
export function packHostPath(hostPath: string): Readable {
  const pack = tar.pack();
  const seen = new Map<string, string>();
  const add = async (path: string, name: string, depth: number): Promise<void> => {
    const st = await lstat(path, { bigint: true });
    const header = { name, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtime: wholeSecondsOf(st.mtimeNs) };
    if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1n ? seen.get(key) : undefined;
      if (first !== undefined) return entry(pack, { ...header, type: 'link', linkname: first });
      if (st.nlink > 1n) seen.set(key, name);
      const sink = pack.entry({ ...header, type: 'file', size: Number(st.size) });
      await pipeline(createReadStream(path), sink);
    } else if (st.isSymbolicLink()) {
      await entry(pack, { ...header, type: 'symlink', linkname: await readlink(path) });
    } else if (st.isDirectory()) {
      if (depth >= MAX_DEPTH) throw new VmrunError('usage', `${path}: deeper than ${MAX_DEPTH} directories`);
      await entry(pack, { ...header, name: `${name}/`, type: 'directory' });
      for (const child of (await readdir(path)).sort()) await add(join(path, child), `${name}/${child}`, depth + 1);
    } else if (st.isFIFO()) {
      await entry(pack, { ...header, type: 'fifo' });
    }
    // Sockets and devices have no place in a copy; they are left out, as docker cp does for sockets.
  };
  const top = basename(hostPath.replace(/\/+$/, '')) || '.';
  add(hostPath, top, 0).then(
    () => pack.finalize(),
    (e: NodeJS.ErrnoException) => pack.destroy(e.code === 'ENOENT' ? new VmrunError('not-found', `no such file or directory: ${hostPath}`) : e),
  );
  // tar-stream's pack is a streamx stream, not a Node Readable (it has no unpipe, for
  // one): callers get a real Readable, which pipeline destroys with the pack's error.
  const out = new PassThrough();
  pipeline(pack, out).catch(() => {});
  return out;
}

/**
 * A time as tar keeps it: whole seconds, truncated as tar(1) and the guest's writer do.
 * Not Stats.mtime: Node rounds that to the millisecond, so a file written in the last
 * half millisecond of a second went out stamped with the next second.
 */
function wholeSecondsOf(ns: bigint): Date {
  const NS_PER_S = 1_000_000_000n;
  const seconds = ns >= 0n ? ns / NS_PER_S : -((-ns + NS_PER_S - 1n) / NS_PER_S);
  return new Date(Number(seconds) * 1000);
}

function entry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(header, (e) => (e ? reject(e) : resolve())));
}

/**
 * Makes an archive name safe and relative: leading "./" and trailing "/" go, an
 * absolute name or a ".." component is refused; `rename` replaces the first
 * component. "" is the archive's root itself.
 */
export function cleanArchiveName(name: string, rename?: string): string {
  if (name.startsWith('/')) throw new VmrunError('guest', `refusing absolute name in archive: ${name}`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new VmrunError('guest', `refusing name with ".." in archive: ${name}`);
  if (rename !== undefined && parts.length) parts[0] = rename;
  return parts.join('/');
}

/**
 * Extracts a tar stream under `dest` (an existing directory); with `rename`, the first
 * component of every name is replaced. Parents are created as directories; an entry
 * whose way passes through a symbolic link or a non-directory is refused.
 */
export async function extractToHost(archive: Readable, dest: string, opts: { rename?: string } = {}): Promise<void> {
  const asRoot = process.getuid?.() === 0;
  const dirTimes: Array<{ path: string; mtime: Date }> = [];
  const extract = tar.extract();
  const parentOf = async (rel: string): Promise<void> => {
    let at = dest;
    for (const part of rel.split('/').slice(0, -1)) {
      at = join(at, part);
      const st = await lstat(at).catch(() => undefined);
      if (!st) await mkdir(at, { mode: 0o755 });
      else if (!st.isDirectory()) throw new VmrunError('guest', `refusing to extract ${rel} through ${at}, which is not a directory`);
    }
  };
  const clear = async (path: string): Promise<void> => {
    const st = await lstat(path).catch(() => undefined);
    if (st && !st.isDirectory()) await unlink(path);
  };
  extract.on('entry', (header, stream, next) => {
    const work = async (): Promise<void> => {
      const rel = cleanArchiveName(header.name, opts.rename);
      if (rel === '') {
        stream.resume();
        return;
      }
      await parentOf(rel);
      const path = join(dest, rel);
      const mode = (header.mode ?? 0o644) & 0o7777;
      const mtime = header.mtime ?? new Date();
      switch (header.type) {
        case 'file':
        case 'contiguous-file': {
          await clear(path);
          const fh = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
          try {
            for await (const chunk of stream) await fh.write(chunk as Buffer);
            if (asRoot) await fh.chown(header.uid ?? 0, header.gid ?? 0);
            await fh.chmod(mode);
            await fh.utimes(mtime, mtime);
          } finally {
            await fh.close();
          }
          return;
        }
        case 'directory': {
          const st = await lstat(path).catch(() => undefined);
          if (st && !st.isDirectory()) await unlink(path);
          if (!st?.isDirectory()) await mkdir(path, { mode: 0o700 });
          if (asRoot) await chown(path, header.uid ?? 0, header.gid ?? 0);
          await chmod(path, mode);
          dirTimes.push({ path, mtime });
          break;
        }
        case 'symlink':
          await clear(path);
          await symlink(header.linkname ?? '', path);
          if (asRoot) await lchown(path, header.uid ?? 0, header.gid ?? 0);
          await lutimes(path, mtime, mtime);
          break;
        case 'link': {
          const target = cleanArchiveName(header.linkname ?? '', opts.rename);
          if (target === '') throw new VmrunError('guest', `hard link ${header.name} to the archive's root`);
          await parentOf(target);
          await clear(path);
          await link(join(dest, target), path);
          break;
        }
        default:
          break; // devices and fifos are not recreated on the host
      }
      stream.resume();
    };
    work().then(() => next(), (e: unknown) => {
      stream.resume();
      next(e as Error);
    });
  });
  await pipeline(archive, extract);
  // Directory times last: creating their contents changed them.
  for (const { path, mtime } of dirTimes.reverse()) await utimes(path, mtime, mtime).catch(() => {});
}
