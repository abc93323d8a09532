import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { posix, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { VmrunError, isVmrunError } from '../../errors.js';
import type { StoredImage } from '../copy-image.js';
import type { Digest } from '../digest.js';
import { isObject } from '../json.js';
import { Limits } from '../limits.js';
import { MediaType } from '../media-types.js';
import { parseImageConfig } from '../manifest.js';
import { normalizePlatform } from '../platform.js';
import { formatReference, parseReference } from '../reference.js';
import { detectCompression } from '../rootfs/layer-reader.js';
import type { ImageRecord, ImageStore } from '../store/image-store.js';
import type { ProgressListener } from '../progress-events.js';

interface Member {
  tmpPath: string;
  digest: Digest;
  size: number;
}

/** Options for loading a `docker save` archive. */
export interface LoadOptions {
  onProgress?: ProgressListener;
  /** Most bytes the archive's members may extract to, all together (default Limits.archiveExtractedBytes). */
  maxExtractedBytes?: number;
}

/**
 * Loads a `docker save` tarball (plain or gzipped; legacy layout or docker 25's
 * OCI-style one, both described by manifest.json) into the store. Every member is
 * hashed while it is copied out of the archive; only the blobs the manifest
 * references are kept. Returns each image loaded (one per tag).
 */
export async function loadDockerArchive(store: ImageStore, archivePath: string, opts: LoadOptions = {}): Promise<StoredImage[]> {
  const s = await stat(archivePath).catch(() => undefined);
  if (!s?.isFile()) throw new VmrunError('not-found', `archive ${archivePath} does not exist or is not a file`);
  const work = join(store.tmpDir(), `load-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(work);
  const lease = await store.lease();
  try {
    const { files, links } = await extractMembers(archivePath, work, opts.maxExtractedBytes ?? Limits.archiveExtractedBytes);
    const member = (name: string, what: string): Member => {
      let n = posix.normalize(name).replace(/^\.\//, '');
      for (let hops = 0; links.has(n); hops++) {
        if (hops > 16) throw new VmrunError('image', `${archivePath}: symlink loop at ${name}`);
        n = posix.normalize(posix.join(posix.dirname(n), links.get(n)!));
      }
      const m = files.get(n);
      if (!m) throw new VmrunError('image', `${archivePath}: ${what} "${name}" is not in the archive`);
      return m;
    };
    const manifestMember = files.get('manifest.json');
    if (!manifestMember) throw new VmrunError('image', `${archivePath}: not a docker save archive (no manifest.json)`);
    if (manifestMember.size > Limits.archiveMetadataBytes) throw new VmrunError('image', `${archivePath}: manifest.json is too large`);
    let entries: unknown;
    try {
      entries = JSON.parse(await readFile(manifestMember.tmpPath, 'utf8'));
    } catch (e) {
      throw new VmrunError('image', `${archivePath}: manifest.json is not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(entries) || entries.length === 0) throw new VmrunError('image', `${archivePath}: manifest.json lists no images`);

    const loaded: StoredImage[] = [];
    for (const [i, raw] of entries.entries()) {
      const what = `${archivePath} image ${i}`;
      if (!isObject(raw) || typeof raw.Config !== 'string' || !Array.isArray(raw.Layers)) {
        throw new VmrunError('image', `${what}: manifest.json entry needs "Config" and "Layers"`);
      }
      if (raw.Layers.length > Limits.layers) throw new VmrunError('image', `${what}: too many layers`);
      const configMember = member(raw.Config, 'config');
      if (configMember.size > Limits.configBytes) throw new VmrunError('image', `${what}: config is too large`);
      const configBytes = await readFile(configMember.tmpPath);
      const config = parseImageConfig(configBytes, `config of ${what}`);
      const layerMembers = raw.Layers.map((l) => {
        if (typeof l !== 'string') throw new VmrunError('image', `${what}: layer names must be strings`);
        return member(l, 'layer');
      });
      if (layerMembers.length !== config.diffIds.length) {
        throw new VmrunError('image', `${what}: ${layerMembers.length} layers but the config lists ${config.diffIds.length} diff_ids`);
      }
      const layers = [];
      for (const [li, m] of layerMembers.entries()) {
        await lease.add(m.digest);
        // A layer listed twice (docker writes duplicates as symlinks) may already be committed.
        const compression = await detectCompression((await store.hasBlob(m.digest, m.size)) ? store.blobPath(m.digest) : m.tmpPath);
        await commit(store, m);
        opts.onProgress?.({ digest: m.digest, label: `layer ${li + 1}/${layerMembers.length}`, status: 'done', done: m.size, total: m.size });
        layers.push({
          mediaType: compression === 'gzip' ? MediaType.dockerLayerGzip : compression === 'zstd' ? MediaType.ociLayerZstd : 'application/vnd.docker.image.rootfs.diff.tar',
          digest: m.digest,
          size: m.size,
        });
      }
      await lease.add(configMember.digest);
      await store.putBytes(configBytes, configMember.digest);
      const manifestBytes = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.dockerManifest,
          config: { mediaType: MediaType.dockerConfig, digest: configMember.digest, size: configMember.size },
          layers,
        }),
      );
      const manifestDigest = await store.putBytes(manifestBytes);
      await lease.add(manifestDigest);
      const tags = Array.isArray(raw.RepoTags) ? raw.RepoTags.filter((t): t is string => typeof t === 'string') : [];
      const names = tags.length > 0 ? tags.map((t) => formatReference(parseReference(t))) : [`localhost/${configMember.digest.slice(7, 19)}:latest`];
      const manifest = { mediaType: MediaType.dockerManifest, config: { mediaType: MediaType.dockerConfig, digest: configMember.digest, size: configMember.size }, layers };
      for (const name of names) {
        const record: ImageRecord = {
          name,
          digest: manifestDigest,
          mediaType: MediaType.dockerManifest,
          size: manifestBytes.length,
          ...(config.os && config.architecture ? { platform: normalizePlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) }) } : {}),
          storedAt: new Date().toISOString(),
        };
        await store.putImage(record);
        loaded.push({ record, manifest, config });
      }
    }
    return loaded;
  } finally {
    await lease.release();
    await rm(work, { recursive: true, force: true });
  }
}

async function commit(store: ImageStore, m: Member): Promise<void> {
  if (await store.hasBlob(m.digest, m.size)) return;
  await rename(m.tmpPath, store.blobPath(m.digest)).catch(async (e: NodeJS.ErrnoException) => {
    // Already moved for an earlier image of the same archive.
    if (e.code !== 'ENOENT' || !(await store.hasBlob(m.digest, m.size))) throw e;
  });
}

/** Copies every regular member of the archive to `work`, hashing it; records symlinks. Stops past `maxBytes` in all. */
async function extractMembers(archivePath: string, work: string, maxBytes: number): Promise<{ files: Map<string, Member>; links: Map<string, string> }> {
  const files = new Map<string, Member>();
  const links = new Map<string, string>();
  const compression = await detectCompression(archivePath);
  const extract = tar.extract();
  const stages = [createReadStream(archivePath, { highWaterMark: 1 << 20 }), ...(compression === 'gzip' ? [createGunzip()] : []), extract];
  const done = pipeline(stages as unknown as [NodeJS.ReadableStream, NodeJS.WritableStream]).catch((e: Error) => e);
  let n = 0;
  let extracted = 0;
  try {
    for await (const entry of extract) {
      const name = posix.normalize(entry.header.name).replace(/^\.\//, '').replace(/\/$/, '');
      if (entry.header.type === 'symlink' && entry.header.linkname) {
        links.set(name, entry.header.linkname);
      } else if (entry.header.type === 'file' || entry.header.type === 'contiguous-file') {
        if (++n > 100_000) throw new VmrunError('image', `${archivePath}: too many members`);
        const tmpPath = join(work, String(n));
        const hash = createHash('sha256');
        let size = 0;
        const tap = new Transform({
          transform(chunk: Buffer, _e, cb) {
            extracted += chunk.length;
            if (extracted > maxBytes) {
              cb(new VmrunError('image', `${archivePath}: extracts to more than ${maxBytes} bytes`));
              return;
            }
            hash.update(chunk);
            size += chunk.length;
            cb(null, chunk);
          },
        });
        await pipeline(entry, tap, createWriteStream(tmpPath));
        files.set(name, { tmpPath, digest: `sha256:${hash.digest('hex')}`, size });
        continue;
      }
      entry.resume();
    }
    const failure = await done;
    if (failure instanceof Error) throw failure;
  } catch (e) {
    if (isVmrunError(e)) throw e;
    throw new VmrunError('image', `${archivePath}: cannot read archive: ${(e as Error).message}`, { cause: e });
  }
  return { files, links };
}

