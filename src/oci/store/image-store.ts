import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { VmrunError } from '../../errors.js';
import { imageStoreDir, vmrunHome } from '../../host/paths.js';
import { isDigest, splitDigest, verifyBytes, sha256Digest, type Digest } from '../digest.js';
import { isObject, parseJsonObject } from '../json.js';
import { parseManifestDocument, type Descriptor, type ImageManifest } from '../manifest.js';
import type { Platform } from '../platform.js';
import { processAlive } from '../../host/process-alive.js';
import { acquireLock, type HeldLock } from './file-lock.js';
import { writeFileAtomic } from '../../host/atomic-file.js';
import { ingestBlob, type BlobSource, type IngestProgress } from './blob-ingest.js';

/** One named image in the store. */
export interface ImageRecord {
  /** Canonical name, e.g. `docker.io/library/alpine:3.20` or `oci:/abs/dir:tag`. */
  name: string;
  /** Digest of the single-platform manifest. */
  digest: Digest;
  mediaType: string;
  size: number;
  platform?: Platform;
  /** Digest of the multi-platform index it was selected from, if any. */
  indexDigest?: Digest;
  /** When it was stored (ISO 8601). */
  storedAt: string;
}

/** Records that are referenced by a pull in progress, so garbage collection leaves them alone. */
export interface Lease {
  add(digest: Digest): Promise<void>;
  release(): Promise<void>;
}

const REF_NAME = 'org.opencontainers.image.ref.name';

/**
 * The content-addressed image store: blobs under `blobs/<alg>/<hex>` (an OCI image
 * layout, so other tools can read it), named images in `index.json`. Blobs are only
 * ever created by verified rename, so a crash never leaves a corrupt one.
 */
export class ImageStore {
  private constructor(readonly root: string) {}

  /** Opens (creating if needed) the store under a vmrun home (default: `vmrunHome()`). */
  static async open(home: string = vmrunHome()): Promise<ImageStore> {
    const root = imageStoreDir(home);
    for (const d of ['blobs/sha256', 'blobs/sha512', 'tmp', 'leases', 'layer-index']) await mkdir(join(root, d), { recursive: true });
    const layout = join(root, 'oci-layout');
    if (!(await stat(layout).catch(() => undefined))) await writeFileAtomic(layout, '{"imageLayoutVersion":"1.0.0"}');
    return new ImageStore(root);
  }

  /** Path of a blob (whether or not it exists). */
  blobPath(digest: Digest): string {
    const { algorithm, hex } = splitDigest(digest);
    return join(this.root, 'blobs', algorithm, hex);
  }

  /** True if the blob is present with the expected size (when given). */
  async hasBlob(digest: Digest, size?: number): Promise<boolean> {
    const s = await stat(this.blobPath(digest)).catch(() => undefined);
    return s !== undefined && (size === undefined || s.size === size);
  }

  /** Reads a small blob fully, checking its digest again (manifests and configs). */
  async readBlob(digest: Digest, maxBytes: number, what: string): Promise<Buffer> {
    const s = await stat(this.blobPath(digest)).catch(() => undefined);
    if (!s) throw new VmrunError('not-found', `${what}: blob ${digest} is not in the store (pull the image again)`);
    if (s.size > maxBytes) throw new VmrunError('image', `${what}: ${s.size} bytes is more than the ${maxBytes} allowed`);
    const bytes = await readFile(this.blobPath(digest));
    verifyBytes(bytes, digest, `${what} (${this.blobPath(digest)})`);
    return bytes;
  }

  /** Opens a stored blob as a stream. */
  openBlob(digest: Digest): Readable {
    return createReadStream(this.blobPath(digest), { highWaterMark: 1 << 20 });
  }

  /** Stores bytes already in memory (verified against `digest` when given). */
  async putBytes(bytes: Uint8Array, digest?: Digest): Promise<Digest> {
    const d = digest ?? sha256Digest(bytes);
    if (digest) verifyBytes(bytes, digest, `blob ${digest}`);
    if (!(await this.hasBlob(d, bytes.length))) {
      await mkdir(join(this.root, 'blobs', splitDigest(d).algorithm), { recursive: true });
      await writeFileAtomic(this.blobPath(d), bytes);
    }
    return d;
  }

  /**
   * Streams a blob into the store, verified against its descriptor, resuming an
   * earlier partial download. Concurrent ingestions of the same blob (other
   * processes too) wait for one another instead of writing twice.
   * Returns false if the blob was already present.
   */
  async ingest(desc: { digest: Digest; size: number }, source: BlobSource, what: string, onProgress?: IngestProgress): Promise<boolean> {
    if (await this.hasBlob(desc.digest, desc.size)) return false;
    const { hex, algorithm } = splitDigest(desc.digest);
    const partial = join(this.root, 'tmp', `${algorithm}-${hex}.partial`);
    const lock = await acquireLock(`${partial}.lock`, `download of ${desc.digest}`, {
      until: () => this.hasBlob(desc.digest, desc.size),
    });
    if (!lock) return false;
    try {
      if (await this.hasBlob(desc.digest, desc.size)) return false;
      await ingestBlob(desc, source, partial, this.blobPath(desc.digest), what, onProgress);
      return true;
    } finally {
      await lock.release();
    }
  }

  /** Starts a lease: blobs added to it survive garbage collection until it is released. */
  async lease(): Promise<Lease> {
    const path = join(this.root, 'leases', `${process.pid}-${randomBytes(6).toString('hex')}`);
    await appendFile(path, '');
    return {
      add: (digest) => appendFile(path, `${digest}\n`),
      release: () => unlink(path).catch(() => {}),
    };
  }

  private lockStore(): Promise<HeldLock> {
    return acquireLock(join(this.root, 'store.lock'), `image store ${this.root}`, { timeoutMs: 60_000 }) as Promise<HeldLock>;
  }

  /** All named images, sorted by name. */
  async listImages(): Promise<ImageRecord[]> {
    const index = await this.readIndex();
    return index.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The image with this canonical name, if stored. */
  async getImage(name: string): Promise<ImageRecord | undefined> {
    return (await this.readIndex()).find((r) => r.name === name);
  }

  /** Adds or replaces a named image (its blobs must already be stored). */
  async putImage(record: ImageRecord): Promise<void> {
    const lock = await this.lockStore();
    try {
      const records = (await this.readIndex()).filter((r) => r.name !== record.name);
      records.push(record);
      await this.writeIndex(records);
    } finally {
      await lock.release();
    }
  }

  /** Removes named images and deletes blobs nothing references any more; returns the deleted digests. */
  async removeImages(names: string[]): Promise<{ removed: ImageRecord[]; deletedBlobs: Digest[]; freedBytes: number }> {
    const lock = await this.lockStore();
    try {
      const records = await this.readIndex();
      const removed = records.filter((r) => names.includes(r.name));
      const kept = records.filter((r) => !names.includes(r.name));
      await this.writeIndex(kept);
      return { removed, ...(await this.collectGarbage(kept)) };
    } finally {
      await lock.release();
    }
  }

  /** Deletes unreferenced blobs (and their cached layer indexes); holds the store lock. */
  async gc(): Promise<{ deletedBlobs: Digest[]; freedBytes: number }> {
    const lock = await this.lockStore();
    try {
      return await this.collectGarbage(await this.readIndex());
    } finally {
      await lock.release();
    }
  }

  private async collectGarbage(records: ImageRecord[]): Promise<{ deletedBlobs: Digest[]; freedBytes: number }> {
    const live = new Set<string>(await this.leasedDigests());
    for (const r of records) {
      live.add(r.digest);
      if (r.indexDigest) live.add(r.indexDigest);
      const manifest = await this.readManifest(r.digest).catch(() => undefined);
      if (!manifest) continue;
      live.add(manifest.config.digest);
      for (const l of manifest.layers) live.add(l.digest);
    }
    const deletedBlobs: Digest[] = [];
    let freedBytes = 0;
    for (const algorithm of ['sha256', 'sha512']) {
      const dir = join(this.root, 'blobs', algorithm);
      for (const hex of await readdir(dir).catch(() => [] as string[])) {
        const digest = `${algorithm}:${hex}`;
        if (!isDigest(digest) || live.has(digest)) continue;
        const s = await stat(join(dir, hex)).catch(() => undefined);
        await unlink(join(dir, hex)).catch(() => {});
        await unlink(join(this.root, 'layer-index', `${algorithm}-${hex}.json`)).catch(() => {});
        deletedBlobs.push(digest);
        freedBytes += s?.size ?? 0;
      }
    }
    return { deletedBlobs, freedBytes };
  }

  private async leasedDigests(): Promise<string[]> {
    const dir = join(this.root, 'leases');
    const out: string[] = [];
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const pid = Number(name.split('-')[0]);
      if (!processAlive(pid)) {
        await unlink(join(dir, name)).catch(() => {});
        continue;
      }
      out.push(...(await readFile(join(dir, name), 'utf8').catch(() => '')).split('\n').filter(Boolean));
    }
    return out;
  }

  /** Reads and parses a stored single-platform manifest. */
  async readManifest(digest: Digest): Promise<ImageManifest> {
    const doc = parseManifestDocument(await this.readBlob(digest, 4 << 20, `manifest ${digest}`), undefined, `manifest ${digest}`);
    if (doc.kind !== 'manifest') throw new VmrunError('image', `manifest ${digest} is an index, not an image manifest`);
    return doc.manifest;
  }

  /** Path where the cached index of a layer's tar headers lives. */
  layerIndexPath(digest: Digest): string {
    const { algorithm, hex } = splitDigest(digest);
    return join(this.root, 'layer-index', `${algorithm}-${hex}.json`);
  }

  /** Directory for temporary files on the same filesystem as the blobs. */
  tmpDir(): string {
    return join(this.root, 'tmp');
  }

  private async readIndex(): Promise<ImageRecord[]> {
    const path = join(this.root, 'index.json');
    const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    if (!bytes) return [];
    const doc = parseJsonObject(bytes, 64 << 20, `image store index ${path}`, 'internal');
    const manifests = Array.isArray(doc.manifests) ? doc.manifests : [];
    return manifests.filter(isObject).flatMap((m): ImageRecord[] => {
      const ann = isObject(m.annotations) ? m.annotations : {};
      const name = ann[REF_NAME];
      if (typeof name !== 'string' || !isDigest(m.digest)) return [];
      const r: ImageRecord = {
        name,
        digest: m.digest,
        mediaType: String(m.mediaType ?? ''),
        size: Number(m.size ?? 0),
        storedAt: String(ann['io.vmrun.stored-at'] ?? ''),
      };
      if (isObject(m.platform) && typeof m.platform.os === 'string' && typeof m.platform.architecture === 'string') {
        r.platform = { os: m.platform.os, architecture: m.platform.architecture, ...(typeof m.platform.variant === 'string' ? { variant: m.platform.variant } : {}) };
      }
      if (isDigest(ann['io.vmrun.index-digest'])) r.indexDigest = ann['io.vmrun.index-digest'];
      return [r];
    });
  }

  private async writeIndex(records: ImageRecord[]): Promise<void> {
    const manifests: (Descriptor & { annotations: Record<string, string> })[] = records.map((r) => ({
      mediaType: r.mediaType,
      digest: r.digest,
      size: r.size,
      ...(r.platform ? { platform: r.platform } : {}),
      annotations: {
        [REF_NAME]: r.name,
        'io.vmrun.stored-at': r.storedAt,
        ...(r.indexDigest ? { 'io.vmrun.index-digest': r.indexDigest } : {}),
      },
    }));
    const doc = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests };
    await writeFileAtomic(join(this.root, 'index.json'), `${JSON.stringify(doc, null, 2)}\n`);
  }
}

