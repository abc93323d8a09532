import { VmrunError } from '../errors.js';
import { mapLimit } from './concurrency.js';
import type { Digest } from './digest.js';
import type { ImageSource } from './image-source.js';
import { Limits } from './limits.js';
import { parseImageConfig, parseManifestDocument, selectPlatform, type ImageConfig, type ImageManifest } from './manifest.js';
import { formatPlatform, hostPlatform, normalizePlatform, platformMatches, type Platform } from './platform.js';
import type { ProgressListener } from './progress-events.js';
import type { ImageRecord, ImageStore } from './store/image-store.js';

/** Options for copying an image into the store. */
export interface CopyOptions {
  /** Platform to select from a multi-platform index (default: the host's). */
  platform?: Platform;
  /** Blobs downloaded in parallel (default 3). */
  concurrency?: number;
  onProgress?: ProgressListener;
}

/** A stored image: its record plus its parsed manifest and config. */
export interface StoredImage {
  record: ImageRecord;
  manifest: ImageManifest;
  config: ImageConfig;
}

/**
 * Copies an image from a source into the store: root manifest, platform selection,
 * config, then layers in parallel, each verified while streaming. The name is
 * recorded only after every blob is stored, and a lease keeps the new blobs safe
 * from a concurrent `rmi`'s garbage collection meanwhile.
 */
export async function copyImage(source: ImageSource, store: ImageStore, opts: CopyOptions = {}): Promise<StoredImage> {
  const wanted = opts.platform ?? hostPlatform();
  const lease = await store.lease();
  try {
    let fetched = await source.fetchManifest();
    let doc = parseManifestDocument(fetched.bytes, fetched.contentType, `manifest of ${source.name}`);
    let indexDigest: Digest | undefined;
    let platform: Platform | undefined;
    for (let depth = 0; doc.kind === 'index'; depth++) {
      if (depth > 2) throw new VmrunError('image', `${source.name}: indexes nested more than 2 deep`);
      await lease.add(fetched.digest);
      await store.putBytes(fetched.bytes, fetched.digest);
      indexDigest ??= fetched.digest;
      const chosen = selectPlatform(doc.index, wanted, source.name);
      platform = chosen.platform;
      fetched = await source.fetchManifest(chosen.digest);
      doc = parseManifestDocument(fetched.bytes, fetched.contentType, `manifest ${chosen.digest} of ${source.name}`);
    }
    const manifest = doc.manifest;
    await lease.add(fetched.digest);
    await lease.add(manifest.config.digest);
    for (const l of manifest.layers) await lease.add(l.digest);

    // Checked before the download: ingestion stops at the declared size, so bounding
    // the declaration bounds the bytes fetched.
    if (manifest.config.size > Limits.configBytes) throw new VmrunError('image', `${source.name}: config is larger than ${Limits.configBytes} bytes`);
    await store.ingest(manifest.config, source.blobSource(manifest.config.digest), `config of ${source.name}`);
    const config = parseImageConfig(await store.readBlob(manifest.config.digest, Limits.configBytes, `config of ${source.name}`), `config of ${source.name}`);
    if (config.diffIds.length !== manifest.layers.length) {
      throw new VmrunError('image', `${source.name}: manifest has ${manifest.layers.length} layers but the config lists ${config.diffIds.length} diff_ids`);
    }
    if (config.os && config.architecture) {
      const actual = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
      platform ??= normalizePlatform(actual);
      if (opts.platform && !platformMatches(opts.platform, actual)) {
        throw new VmrunError('not-found', `${source.name} is for ${formatPlatform(actual)}, not the requested ${formatPlatform(opts.platform)}`);
      }
    }

    const n = manifest.layers.length;
    manifest.layers.forEach((l, i) => opts.onProgress?.({ digest: l.digest, label: `layer ${i + 1}/${n}`, status: 'waiting', done: 0, total: l.size }));
    await mapLimit(manifest.layers, opts.concurrency ?? 3, async (layer, i) => {
      const label = `layer ${i + 1}/${n}`;
      const report = (status: 'downloading' | 'exists' | 'done', done: number) => opts.onProgress?.({ digest: layer.digest, label, status, done, total: layer.size });
      const fresh = await store.ingest(layer, source.blobSource(layer.digest), `${label} (${layer.digest}) of ${source.name}`, (done) => report('downloading', done));
      report(fresh ? 'done' : 'exists', layer.size);
    });

    await store.putBytes(fetched.bytes, fetched.digest);
    const record: ImageRecord = {
      name: source.name,
      digest: fetched.digest,
      mediaType: manifest.mediaType,
      size: fetched.bytes.length,
      ...(platform ? { platform: normalizePlatform(platform) } : {}),
      ...(indexDigest ? { indexDigest } : {}),
      storedAt: new Date().toISOString(),
    };
    await store.putImage(record);
    return { record, manifest, config };
  } finally {
    await lease.release();
    await source.close();
  }
}
