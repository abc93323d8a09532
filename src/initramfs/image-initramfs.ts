/**
 * The initramfs an image boots from: its flattened root filesystem plus vmrun-init and
 * the few device nodes the kernel needs before init runs, written once per
 * (image, init) pair into a cache and reused by every run.
 */
import { createHash } from 'node:crypto';
import { readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { VmrunError } from '../errors.js';
import { cpioMemberName, newcArchive, type CpioEntry } from './cpio-newc.js';
import { vmrunCacheDir } from '../host/cache-dir.js';
import { CoalescingWriter } from '../host/coalescing-writer.js';
import { buildCachedFile, existingFile } from '../host/cached-file.js';

/** Where vmrun-init lives in the guest; the kernel cmdline names it with rdinit=. */
export const GUEST_INIT_PATH = '/.vmrun/init';
/** The cmdline argument that makes the kernel start vmrun-init. */
export const GUEST_INIT_CMDLINE = `rdinit=${GUEST_INIT_PATH}`;

/** The image "digest" of the archive that holds no image (its root is a disk). */
const INIT_ONLY = 'none';

/** Bumped when the archive's layout changes, so old cache entries are not reused. */
const LAYOUT_VERSION = 1;
const READ_BACK_CHUNK = 1 << 20;

/** What identifies a cached image initramfs. */
export interface ImageInitramfsKey {
  /** The image's manifest or config digest ("sha256:..."). */
  imageDigest: string;
  /** The vmrun-init binary to put in the archive. */
  initBinaryPath: string;
  /** Cache root; defaults to vmrunCacheDir(). */
  cacheDir?: string;
}

async function initBinaryHash(path: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new VmrunError('not-found', `guest init binary ${path} cannot be read (build it with make -C guest/init): ${(e as Error).message}`, { cause: e });
  }
  return createHash('sha256').update(bytes).digest('hex');
}

/** The path the archive for `key` has (or would have) in the cache. */
export async function imageInitramfsCachePath(key: ImageInitramfsKey): Promise<string> {
  if (key.imageDigest !== INIT_ONLY && !/^[a-z0-9]+:[a-f0-9]{32,}$/.test(key.imageDigest)) {
    throw new VmrunError('usage', `image digest "${key.imageDigest}" is not of the form sha256:<hex>`);
  }
  const initHash = await initBinaryHash(key.initBinaryPath);
  const id = createHash('sha256').update(`layout=${LAYOUT_VERSION}\0image=${key.imageDigest}\0init=${initHash}`).digest('hex').slice(0, 32);
  return join(key.cacheDir ?? vmrunCacheDir(), 'initramfs', `${id}.cpio`);
}

/** The cached archive for `key`, or undefined if it has not been built. */
export async function findCachedImageInitramfs(key: ImageInitramfsKey): Promise<string | undefined> {
  return existingFile(await imageInitramfsCachePath(key));
}

const root = { uid: 0, gid: 0, mtime: 0, size: 0 };

/** Nodes the kernel opens before init runs; init then mounts devtmpfs over /dev. */
function earlyDevEntries(): CpioEntry[] {
  return [
    { ...root, path: 'dev', type: 'dir', mode: 0o755 },
    { ...root, path: 'dev/console', type: 'char', mode: 0o600, devmajor: 5, devminor: 1 },
    { ...root, path: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
    { ...root, path: 'dev/tty', type: 'char', mode: 0o666, devmajor: 5, devminor: 0 },
  ];
}

/**
 * Adds the guest's system entries around the image's: early /dev first, the image,
 * then /.vmrun/init last (so no image file can replace it) and /init pointing to it
 * unless the image has its own. Missing parent directories are created (0755, root),
 * since the kernel's unpacker does not create them.
 */
async function* guestEntries(image: AsyncIterable<CpioEntry> | Iterable<CpioEntry>, init: Uint8Array): AsyncGenerator<CpioEntry> {
  const dirs = new Set<string>(['.']);
  let imageHasInit = false;
  function* parents(path: string): Generator<CpioEntry> {
    const parts = cpioMemberName(path).split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (dirs.has(dir)) continue;
      dirs.add(dir);
      yield { ...root, path: dir, type: 'dir', mode: 0o755 };
    }
  }
  function* withParents(entry: CpioEntry): Generator<CpioEntry> {
    yield* parents(entry.path);
    if (entry.type === 'dir') dirs.add(cpioMemberName(entry.path));
    yield entry;
  }
  for (const e of earlyDevEntries()) yield* withParents(e);
  for await (const e of image) {
    if (cpioMemberName(e.path) === 'init') imageHasInit = true;
    yield* withParents(e);
  }
  yield* withParents({ ...root, path: '.vmrun', type: 'dir', mode: 0o755 });
  yield* withParents({ ...root, path: GUEST_INIT_PATH, type: 'file', mode: 0o755, size: init.length, content: init });
  if (!imageHasInit) yield { ...root, path: 'init', type: 'symlink', mode: 0o777, linkname: GUEST_INIT_PATH.slice(1) };
}

async function* readBackFrom(handle: FileHandle, offset: number, length: number): AsyncGenerator<Uint8Array> {
  let done = 0;
  while (done < length) {
    const want = Math.min(READ_BACK_CHUNK, length - done);
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await handle.read(buf, 0, want, offset + done);
    if (bytesRead === 0) throw new VmrunError('internal', `initramfs read-back hit the end of the file at ${offset + done}`);
    done += bytesRead;
    yield buf.subarray(0, bytesRead);
  }
}

/**
 * Returns the cached initramfs for `key`, building it from `entries` (the image's
 * flattened root filesystem) if needed. The archive is written to a temporary file
 * and renamed into place, so a failure or a concurrent build never leaves a partial
 * archive under the cache path. `entries` is not consumed when the cache has it.
 */
export async function buildImageInitramfs(
  key: ImageInitramfsKey,
  entries: AsyncIterable<CpioEntry> | Iterable<CpioEntry>,
): Promise<string> {
  const path = await imageInitramfsCachePath(key);
  if (await existingFile(path)) return path;
  const init = await readFile(key.initBinaryPath);
  return buildCachedFile(path, async (handle) => {
    const writer = new CoalescingWriter(handle);
    const archive = newcArchive(guestEntries(entries, init), {
      readBack: async function* (offset, length) {
        await writer.flush();
        yield* readBackFrom(handle, offset, length);
      },
    });
    for await (const chunk of archive) await writer.write(chunk);
    await writer.flush();
  });
}

/**
 * The initramfs of a machine whose root filesystem is a disk: vmrun-init and the
 * early device nodes only (cached per init binary).
 */
export async function buildInitOnlyInitramfs(initBinaryPath: string, cacheDir?: string): Promise<string> {
  return buildImageInitramfs({ imageDigest: INIT_ONLY, initBinaryPath, ...(cacheDir ? { cacheDir } : {}) }, []);
}
